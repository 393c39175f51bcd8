"""Prompt sets of the eval suites, read from the data files the config names.

Every set becomes a list of prompt rows ``{"id", "messages", "reference"?, "category"?}`` (the
shape :func:`herd.core.verifiers.load_gsm8k` returns), so generation and scoring treat all suites
alike. Bad rows raise ``ValueError`` naming the file, the row and the field.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

from herd.core.chat import ChatFormatError, validate_conversation
from herd.core.jsonl import iter_jsonl
from herd.core.verifiers import load_gsm8k, normalize_number


def _hh_first_human_turn(dialogue: str) -> str | None:
    """The first 'Human:' turn of an HH-RLHF dialogue ('\\n\\nHuman: ... \\n\\nAssistant: ...')."""
    if "Human:" not in dialogue:
        return None
    text = dialogue.split("Human:", 1)[1]
    return text.split("\n\nAssistant:", 1)[0].strip() or None


def _messages(row: dict, path: Path, line_no: int) -> list[dict]:
    """A prompt conversation from whichever prompt field the row has (trailing assistant dropped)."""
    if "messages" in row:
        msgs = list(row["messages"]) if isinstance(row["messages"], list) else row["messages"]
        while isinstance(msgs, list) and msgs and isinstance(msgs[-1], dict) and msgs[-1].get("role") == "assistant":
            msgs = msgs[:-1]
        try:
            validate_conversation(msgs)
        except ChatFormatError as e:
            raise ValueError(f"{path}: row {line_no}: field 'messages': {e}") from e
        return [dict(m) for m in msgs]
    for key in ("prompt", "question"):
        if key in row:
            if not isinstance(row[key], str) or not row[key].strip():
                raise ValueError(f"{path}: row {line_no}: field {key!r} must be a non-empty string")
            return [{"role": "user", "content": row[key]}]
    if "chosen" in row and isinstance(row["chosen"], str):
        turn = _hh_first_human_turn(row["chosen"])
        if turn:
            return [{"role": "user", "content": turn}]
    raise ValueError(f"{path}: row {line_no}: no prompt field (expected 'messages', 'prompt', 'question' or an HH-RLHF 'chosen')")


def load_prompt_rows(path: Path, limit: int | None, id_prefix: str) -> list[dict]:
    """Generic prompt JSONL(.gz); keeps 'id', 'reference' and 'category' when present."""
    rows: list[dict] = []
    for line_no, row in iter_jsonl(path):
        if limit is not None and len(rows) >= limit:
            break
        out = {"id": str(row.get("id", f"{id_prefix}-{line_no}")), "messages": _messages(row, path, line_no)}
        if row.get("reference") is not None:
            out["reference"] = str(row["reference"])
        if row.get("category") is not None:
            out["category"] = str(row["category"])
        rows.append(out)
    if not rows:
        raise ValueError(f"{path}: no prompts")
    return rows


def load_verifier_rows(path: Path, limit: int | None) -> list[dict]:
    """GSM8K JSONL (detected by its 'answer' field) or prompt rows carrying a 'reference'."""
    first = next(iter_jsonl(path), None)
    if first is None:
        raise ValueError(f"{path}: no rows")
    if "answer" in first[1] and "reference" not in first[1]:
        return load_gsm8k(path, limit)
    rows = load_prompt_rows(path, limit, "verify")
    for i, row in enumerate(rows):
        if "reference" not in row or normalize_number(row["reference"]) is None:
            raise ValueError(f"{path}: prompt {row['id']} (row {i + 1}): field 'reference' must hold a number")
    return rows


def load_xstest(path: Path) -> tuple[list[dict], list[dict]]:
    """XSTest (Röttger et al., NAACL 2024) -> (unsafe rows, safe rows); category = its 'type'.

    Unsafe prompts are the ``contrast_*`` types (see FORMATS.md): they look like the safe ones but
    ask for something harmful, so a guard-flagged answer to them is a violation.
    """
    unsafe, safe = [], []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"id", "prompt", "type"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing XSTest column(s) {sorted(missing)}")
        for line_no, row in enumerate(reader, start=2):
            prompt, kind = (row.get("prompt") or "").strip(), (row.get("type") or "").strip()
            if not prompt or not kind:
                raise ValueError(f"{path}: row {line_no}: empty 'prompt' or 'type'")
            item = {"id": f"xstest-{row['id']}", "messages": [{"role": "user", "content": prompt}], "category": kind}
            (unsafe if kind.startswith("contrast_") else safe).append(item)
    return unsafe, safe


def stratified_limit(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
    """At most ``limit`` rows, dealt round-robin from seeded shuffles of each category.

    Taking the first N XSTest rows would test a single category; this keeps every category in
    (as evenly as N allows) and picks the same rows on every run with the same seed.
    """
    if limit is None or len(rows) <= limit:
        return rows
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row.get("category") or ""].append(row)
    rng = random.Random(seed)
    queues = []
    for name in sorted(groups):
        g = list(groups[name])
        rng.shuffle(g)
        queues.append(g)
    picked: list[dict] = []
    while len(picked) < limit:
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    return picked
