"""Verifiers: exact match on a final number, one implementation for reward and for eval.

Rejection sampling uses a verifier to pick correct samples; evaluation uses the same verifier to
report accuracy (as nanochat's ``tasks/gsm8k.py`` does). Keeping one implementation means a round
cannot look better in eval than the data engine judged it, or the reverse.

GSM8K answers end in ``#### <number>`` (Cobbe et al., 2021); the demo task's references are plain
integers. A response's answer is its *last* number, the usual GSM8K convention.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Mapping, Sequence

from herd.core.chat import Conversation

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def normalize_number(text: str) -> str | None:
    """Canonical form of a number string: no thousands separators, no trailing zeros or '$'.

    ``"1,000"`` -> ``"1000"``, ``"18.00"`` -> ``"18"``, ``"-0.50"`` -> ``"-0.5"``.
    """
    cleaned = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def extract_final_number(text: str) -> str | None:
    """The last number in ``text``, normalized; None when there is none."""
    matches = _NUMBER.findall(text)
    for candidate in reversed(matches):
        norm = normalize_number(candidate)
        if norm is not None:
            return norm
    return None


def gsm8k_reference(answer: str) -> str:
    """The reference number of a GSM8K answer (the text after ``#### ``)."""
    if "####" not in answer:
        raise ValueError(f"GSM8K answer has no '#### <number>' line: {answer[-80:]!r}")
    norm = normalize_number(answer.rsplit("####", 1)[1])
    if norm is None:
        raise ValueError(f"GSM8K answer's '####' line is not a number: {answer[-80:]!r}")
    return norm


def last_assistant_content(conversation: Conversation) -> str:
    for message in reversed(conversation):
        if message["role"] == "assistant":
            return message["content"]
    raise ValueError("conversation has no assistant message to verify")


class NumberMatchVerifier:
    """Exact match between a response's final number and the reference number.

    Fits :class:`herd.core.scoring.Scorer`: scores are 1.0 (correct) or 0.0; the reference comes
    from ``metadata[i]["reference"]``.
    """

    name = "verifier"

    def verify(self, response: str, reference: str) -> bool:
        got = extract_final_number(response)
        want = normalize_number(str(reference))
        return got is not None and want is not None and got == want

    def score(
        self, conversations: Sequence[Conversation], metadata: Sequence[Mapping] | None = None
    ) -> list[float]:
        if metadata is None or len(metadata) != len(conversations):
            raise ValueError("NumberMatchVerifier needs one metadata row with a 'reference' per conversation")
        out = []
        for i, (conv, meta) in enumerate(zip(conversations, metadata)):
            if "reference" not in meta or meta["reference"] is None:
                raise ValueError(f"row {i}: no 'reference' to verify against")
            out.append(1.0 if self.verify(last_assistant_content(conv), str(meta["reference"])) else 0.0)
        return out


def load_gsm8k(path: Path | str, limit: int | None = None) -> list[dict]:
    """GSM8K JSONL -> prompt rows ``{"id", "messages", "reference"}`` (ids ``gsm8k-<line>``)."""
    rows = []
    p = Path(path)
    with open(p, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                question, answer = row["question"], row["answer"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{p}: row {line_no}: not a GSM8K row with 'question' and 'answer' ({e})") from e
            rows.append(
                {
                    "id": f"gsm8k-{line_no}",
                    "messages": [{"role": "user", "content": question}],
                    "reference": gsm8k_reference(answer),
                }
            )
    return rows
