"""Reading labelled and unlabelled safety rows from JSONL, with errors that name file and row.

Two row shapes:

* **labelled** (llama-cookbook's ``TrainingExample``): ``prompt``, ``response`` (null/absent =
  prompt classification), ``label`` (``safe``/``unsafe``), ``violated_category_codes``; extra keys
  are kept;
* **classify input**: ``prompt`` and optional ``response``, or a ready ``conversation``
  (list of ``{role, content}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from herd.core.chat import ChatFormatError, Conversation, validate_conversation
from herd.core.jsonl import iter_jsonl as core_iter_jsonl


class DataError(ValueError):
    """A malformed input row; the message names the file and the 1-based row number."""


@dataclass
class LabelledExample:
    """One labelled conversation, as llama-cookbook's fine-tuning formatter takes it."""

    prompt: str
    response: str | None
    label: str
    violated_category_codes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def unsafe(self) -> bool:
        return self.label == "unsafe"

    def conversation(self) -> list[dict]:
        return conversation_of(self.prompt, self.response)


def conversation_of(prompt: str, response: str | None = None) -> list[dict]:
    conv = [{"role": "user", "content": prompt}]
    if response is not None:
        conv.append({"role": "assistant", "content": response})
    return conv


def iter_jsonl(path: Path | str) -> Iterator[tuple[int, dict]]:
    """``(row number, object)`` for each non-blank line; bad JSON raises :class:`DataError`."""
    return core_iter_jsonl(path, DataError)


def _text_field(obj: dict, key: str, where: str, optional: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not optional and not value.strip()):
        raise DataError(f"{where}: field '{key}' must be a non-empty string")
    return value


def parse_labelled(obj: dict, where: str) -> LabelledExample:
    prompt = _text_field(obj, "prompt", where)
    response = _text_field(obj, "response", where, optional=True)
    label = obj.get("label")
    if label not in ("safe", "unsafe"):
        raise DataError(f"{where}: field 'label' must be 'safe' or 'unsafe', got {label!r}")
    codes = obj.get("violated_category_codes", [])
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise DataError(f"{where}: field 'violated_category_codes' must be a list of strings")
    if label == "unsafe" and not codes:
        raise DataError(f"{where}: an 'unsafe' row needs at least one violated category code")
    if label == "safe" and codes:
        raise DataError(f"{where}: a 'safe' row cannot list violated categories")
    known = {"prompt", "response", "label", "violated_category_codes"}
    return LabelledExample(prompt, response, label, list(codes), {k: v for k, v in obj.items() if k not in known})


def read_labelled(path: Path | str, split: str | None = None) -> list[LabelledExample]:
    """Labelled rows; ``split`` keeps only rows whose ``split`` field equals it."""
    out = []
    for n, obj in iter_jsonl(path):
        ex = parse_labelled(obj, f"{path}: row {n}")
        if split is None or ex.extra.get("split") == split:
            out.append(ex)
    return out


def parse_classify_row(obj: dict, where: str) -> Conversation:
    """The conversation a classify-input row asks about."""
    if "conversation" in obj:
        conv = obj["conversation"]
        try:
            validate_conversation(conv)
        except ChatFormatError as e:
            raise DataError(f"{where}: field 'conversation': {e}") from None
        return conv
    prompt = _text_field(obj, "prompt", where)
    response = _text_field(obj, "response", where, optional=True)
    return conversation_of(prompt, response)


def read_classify_input(path: Path | str) -> list[tuple[dict, Conversation]]:
    """All rows (validated before any work starts, so a bad row 900 fails in a second)."""
    return [(obj, parse_classify_row(obj, f"{path}: row {n}")) for n, obj in iter_jsonl(path)]


def read_refusal_input(path: Path | str) -> list[tuple[dict, str, str]]:
    """``(row, prompt, response)``; both fields required."""
    out = []
    for n, obj in iter_jsonl(path):
        where = f"{path}: row {n}"
        out.append((obj, _text_field(obj, "prompt", where), _text_field(obj, "response", where)))
    return out
