"""Row builders and a real HH-RLHF sample for the curation tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from herd.core.chat_data import hh_to_messages

DATA = Path(__file__).resolve().parents[2] / "data"


def chat(user: str, *assistant: str, **extra) -> dict:
    """A chat row: one user turn, then the given assistant turns alternating with 'go on'."""
    messages = [{"role": "user", "content": user}]
    for i, a in enumerate(assistant):
        if i:
            messages.append({"role": "user", "content": "go on"})
        messages.append({"role": "assistant", "content": a})
    return {"messages": messages, **extra}


def hh_rows(n: int, start: int = 0) -> list[dict]:
    """The first ``n`` chosen dialogues of the shipped HH-RLHF harmless test split as chat rows,
    skipping rows whose first user turn repeats an earlier one (the split has a few)."""
    rows, seen = [], set()
    with gzip.open(DATA / "hh-rlhf-harmless" / "test.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i < start:
                continue
            messages = hh_to_messages(json.loads(line))
            if messages[0]["content"] in seen or not all(m["content"] for m in messages):
                continue
            seen.add(messages[0]["content"])
            rows.append({"messages": messages, "source_line": i + 1})
            if len(rows) == n:
                break
    return rows
