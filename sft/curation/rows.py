"""Reading chat rows and the views of a row the curation steps look at.

Rows are what SFT consumes: ``{"messages": [{"role", "content"}, ...], ...extra columns}``. A bad
row stops the run with an error naming the file, the row and the field, before anything is
written, so a curated dataset is never built from half a file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from herd.core.chat import ChatFormatError, validate_conversation
from herd.core.chat_data import DataFormat, RowProblem, problems_message, read_records, record_to_messages


class CurationInputError(ValueError):
    """An input row that is not a valid chat row; the message names the source and row."""


def read_rows(path: Path | str, fmt: DataFormat = "messages") -> list[dict]:
    """Rows of a JSONL(.gz) file or a saved ``datasets`` directory, every row checked first.

    ``fmt="hh-rlhf"`` turns an Anthropic HH-RLHF row's ``chosen`` dialogue into ``messages``
    (core.chat_data's converter); other columns are kept. Empty replies are *not* input errors
    here: removing them is one of the cleaning rules, with its own count.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: curation input not found")
    rows: list[dict] = []
    problems: list[RowProblem] = []
    for loc, record in read_records(p):
        if isinstance(record, RowProblem):
            problems.append(record)
            continue
        try:
            messages = record_to_messages(record, fmt)
            validate_conversation(messages)
        except ChatFormatError as e:
            problems.append(RowProblem(str(p), loc, f"field 'messages': {e}"))
            continue
        extra = {k: v for k, v in record.items() if k not in ("messages", "chosen", "rejected")}
        rows.append({"messages": [{"role": m["role"], "content": m["content"]} for m in messages], **extra})
    if problems:
        raise CurationInputError(problems_message(problems))
    return rows


def validate_rows(rows: Iterable[dict], source: str = "rows") -> None:
    """Check that every row is a mapping with a valid ``messages`` conversation."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise CurationInputError(f"{source}: row {i}: expected a JSON object, got {type(row).__name__}")
        if "messages" not in row:
            raise CurationInputError(f"{source}: row {i}: missing field 'messages'")
        try:
            validate_conversation(row["messages"])
        except ChatFormatError as e:
            raise CurationInputError(f"{source}: row {i}: field 'messages': {e}") from e


def assistant_texts(row: dict) -> list[str]:
    """Contents of the row's assistant turns, in order (what SFT puts its loss on)."""
    return [m["content"] for m in row["messages"] if m["role"] == "assistant"]


def user_texts(row: dict) -> list[str]:
    return [m["content"] for m in row["messages"] if m["role"] == "user"]


def dialog_text(row: dict) -> str:
    """The whole dialog as one string, the unit Llama 3 clusters and deduplicates on."""
    return "\n".join(f"{m['role']}: {m['content'].strip()}" for m in row["messages"])


_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")


def strip_code(text: str) -> str:
    """Text without fenced or inline code, where '!' and foreign words are not prose."""
    return _INLINE_CODE.sub(" ", _CODE_BLOCK.sub(" ", text))
