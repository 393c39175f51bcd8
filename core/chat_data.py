"""Read chat data from disk, validate every row, and convert HH-RLHF dialogues to messages.

Training stages consume conversations (lists of ``{"role", "content"}``). They arrive as JSONL
files (optionally gzipped) or as saved Hugging Face ``datasets`` directories with a ``messages``
column, or in Anthropic HH-RLHF form (``\\n\\nHuman: … \\n\\nAssistant: …`` strings). A bad row deep
in a large file is the usual way a long job dies an hour in, so every row is checked up front and
each problem is reported with its file and row: ``line N`` (1-based) for JSONL, ``index N``
(0-based, as ``ds[N]``) for ``datasets`` directories. The caller decides whether problems are fatal
(``bad_rows="fail"``, the default) or skipped and counted (``"skip"``).

:func:`hh_to_preference` is the public converter the preference stage reuses: it turns an HH-RLHF
``{"chosen", "rejected"}`` pair into TRL's conversational preference row
``{"prompt": [messages], "chosen": [assistant message], "rejected": [assistant message]}``;
:func:`load_hh_preferences` applies it to whole files with the same row-numbered reporting.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal, Mapping

from herd.core.chat import ChatFormatError, validate_conversation

DataFormat = Literal["messages", "hh-rlhf"]
BadRows = Literal["fail", "skip"]

#: HH-RLHF speaker tags (Bai et al., 2022, github.com/anthropics/hh-rlhf) and the roles they map to.
HH_ROLES = {"Human": "user", "Assistant": "assistant"}
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")

#: How many problem rows an error message lists before summarising the rest.
MAX_LISTED = 20


class ChatDataError(ValueError):
    """Chat data that cannot be used; the message names the file and the rows."""


@dataclass(frozen=True)
class RowProblem:
    """One unusable row: where it is and why."""

    source: str
    location: str
    """``line N`` (JSONL, 1-based) or ``index N`` (datasets directory, 0-based)."""
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.location}: {self.reason}"


@dataclass
class ChatRow:
    """A validated conversation and where it came from (kept for error messages downstream)."""

    messages: list[dict[str, str]]
    source: str
    location: str


@dataclass
class ChatData:
    """The usable rows of one or more files, plus the rows that were skipped and why."""

    rows: list[ChatRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    def problem_counts(self) -> dict[str, int]:
        """Skipped rows per reason kind (the text before the first colon), for metrics."""
        return dict(Counter(p.reason.split(":")[0] for p in self.problems))


# --------------------------------------------------------------------------- HH-RLHF


def parse_hh_dialogue(text: str) -> list[dict[str, str]]:
    """``"\\n\\nHuman: hi\\n\\nAssistant: hello"`` -> ``[{"role": "user", ...}, {"role": "assistant", ...}]``.

    Contents are stripped (the Llama 3 template strips them too). Text before the first speaker
    tag, or a dialogue with no tags at all, raises :class:`ChatFormatError`; empty turns are kept
    so that validation can report them as such.
    """
    if not isinstance(text, str):
        raise ChatFormatError(f"HH-RLHF dialogue is not a string but {type(text).__name__}")
    parts = _HH_TURN.split(text)
    if len(parts) < 3:
        raise ChatFormatError("HH-RLHF dialogue has no '\\n\\nHuman:'/'\\n\\nAssistant:' turns")
    if parts[0].strip():
        raise ChatFormatError(f"HH-RLHF dialogue has text before its first turn: {parts[0][:40]!r}")
    return [
        {"role": HH_ROLES[tag], "content": content.strip()}
        for tag, content in zip(parts[1::2], parts[2::2])
    ]


def hh_to_messages(row: Mapping) -> list[dict[str, str]]:
    """SFT conversation of an HH-RLHF row: its ``chosen`` dialogue."""
    if "chosen" not in row:
        raise ChatFormatError("HH-RLHF row has no 'chosen' field")
    return parse_hh_dialogue(row["chosen"])


def hh_to_preference(row: Mapping) -> dict[str, list[dict[str, str]]]:
    """HH-RLHF ``{"chosen", "rejected"}`` -> ``{"prompt", "chosen", "rejected"}`` (TRL conversational).

    Both dialogues must share every turn but the last, and end on a non-empty assistant turn;
    the shared turns become the prompt and each last turn a one-message completion. Raises
    :class:`ChatFormatError` otherwise (the caller adds the file and row).
    """
    for key in ("chosen", "rejected"):
        if key not in row:
            raise ChatFormatError(f"HH-RLHF row has no {key!r} field")
    chosen, rejected = parse_hh_dialogue(row["chosen"]), parse_hh_dialogue(row["rejected"])
    for name, conv in (("chosen", chosen), ("rejected", rejected)):
        if conv[-1]["role"] != "assistant":
            raise ChatFormatError(f"{name} dialogue does not end with an assistant turn")
        if not conv[-1]["content"]:
            raise ChatFormatError(f"empty assistant turn: {name} reply is empty")
    if chosen[:-1] != rejected[:-1]:
        raise ChatFormatError("chosen and rejected dialogues differ before their last turn")
    prompt = chosen[:-1]
    validate_conversation(prompt + chosen[-1:])
    return {"prompt": prompt, "chosen": chosen[-1:], "rejected": rejected[-1:]}


# --------------------------------------------------------------------------- validation


def check_messages(messages: object, require_assistant: bool = True) -> str | None:
    """Why ``messages`` cannot be trained on, or None when it can.

    Beyond what the chat format forbids (unknown roles, non-string content, a late system
    message), training needs at least one assistant turn and no empty assistant turn: an empty
    reply would teach the model to answer with a bare ``<|eot_id|>``.
    """
    if not isinstance(messages, (list, tuple)) or not messages:
        return "no messages"
    try:
        validate_conversation(messages)
    except ChatFormatError as e:
        reason = str(e)
        return f"unknown role: {reason}" if "unknown role" in reason else f"malformed message: {reason}"
    for i, m in enumerate(messages):
        if m["role"] == "assistant" and not m["content"].strip():
            return f"empty assistant turn: message {i}"
    if require_assistant and not any(m["role"] == "assistant" for m in messages):
        return "no assistant turn"
    return None


# --------------------------------------------------------------------------- reading


def _open_lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        yield from f


def read_jsonl_records(path: Path | str) -> Iterator[tuple[str, dict | RowProblem]]:
    """Yield ``("line N", record)`` per non-blank line, or a :class:`RowProblem` for bad lines."""
    p = Path(path)
    for n, raw in enumerate(_open_lines(p), start=1):
        loc = f"line {n}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield loc, RowProblem(str(p), loc, f"not UTF-8: byte {e.start}")
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            yield loc, RowProblem(str(p), loc, f"not valid JSON: {e.msg}")
            continue
        if not isinstance(record, dict):
            yield loc, RowProblem(str(p), loc, "not a JSON object")
            continue
        yield loc, record


def read_dataset_records(path: Path | str) -> Iterator[tuple[str, dict | RowProblem]]:
    """Yield ``("index N", record)`` for a ``datasets.save_to_disk`` directory (split ``train``)."""
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    if isinstance(ds, DatasetDict):
        if "train" not in ds:
            raise ChatDataError(f"{path}: a DatasetDict without a 'train' split ({list(ds)})")
        ds = ds["train"]
    for i, record in enumerate(ds):
        yield f"index {i}", record


def read_records(path: Path | str) -> Iterator[tuple[str, dict | RowProblem]]:
    """Records of a JSONL(.gz) file or a saved ``datasets`` directory."""
    p = Path(path)
    if p.is_dir():
        return read_dataset_records(p)
    if not p.exists():
        raise ChatDataError(f"{p}: no such file or directory")
    return read_jsonl_records(p)


def record_to_messages(record: Mapping, fmt: DataFormat) -> object:
    """The conversation in one record (unvalidated); raises ChatFormatError for missing fields."""
    if fmt == "hh-rlhf":
        return hh_to_messages(record)
    if "messages" not in record:
        raise ChatFormatError("no messages: the row has no 'messages' field")
    return record["messages"]


def _row(source: str, loc: str, record, fmt: DataFormat, require_assistant: bool) -> ChatRow | RowProblem:
    if isinstance(record, RowProblem):
        return record
    try:
        messages = record_to_messages(record, fmt)
    except ChatFormatError as e:
        return RowProblem(source, loc, str(e) if fmt == "messages" else f"bad HH-RLHF row: {e}")
    reason = check_messages(messages, require_assistant)
    if reason is not None:
        return RowProblem(source, loc, reason)
    return ChatRow([{"role": m["role"], "content": m["content"]} for m in messages], source, loc)


def problems_message(problems: list[RowProblem], what: str = "malformed rows") -> str:
    """A multi-line report: one line per problem (up to MAX_LISTED), then a count of the rest."""
    lines = [f"{len(problems)} {what}:"] + [f"  {p}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"  ... and {len(problems) - MAX_LISTED} more")
    return "\n".join(lines)


def load_chat_data(
    paths: list[Path | str] | Path | str,
    fmt: DataFormat = "messages",
    bad_rows: BadRows = "fail",
    require_assistant: bool = True,
) -> ChatData:
    """Read and validate every row of ``paths``.

    With ``bad_rows="fail"`` all files are still read to the end so that one error lists every
    bad row (fixing them one run at a time is miserable); with ``"skip"`` they are dropped and
    recorded in ``ChatData.problems``.
    """
    out = ChatData()
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        source = str(path)
        for loc, record in read_records(path):
            item = _row(source, loc, record, fmt, require_assistant)
            (out.problems if isinstance(item, RowProblem) else out.rows).append(item)
    if out.problems and bad_rows == "fail":
        raise ChatDataError(problems_message(out.problems) + "\n(set bad_rows: skip to drop them)")
    return out


def load_hh_preferences(
    paths: list[Path | str] | Path | str, bad_rows: BadRows = "fail"
) -> tuple[list[dict[str, list[dict[str, str]]]], list[RowProblem]]:
    """HH-RLHF files -> TRL conversational preference rows (:func:`hh_to_preference`) + skipped rows.

    Same reporting as :func:`load_chat_data`: every bad row is listed by file and row, and with
    ``bad_rows="fail"`` they stop the load together.
    """
    rows: list[dict] = []
    problems: list[RowProblem] = []
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        for loc, record in read_records(path):
            if isinstance(record, RowProblem):
                problems.append(record)
                continue
            try:
                rows.append(hh_to_preference(record))
            except ChatFormatError as e:
                problems.append(RowProblem(str(path), loc, f"bad HH-RLHF row: {e}"))
    if problems and bad_rows == "fail":
        raise ChatDataError(problems_message(problems) + "\n(set bad_rows: skip to drop them)")
    return rows, problems
