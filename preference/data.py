"""Preference data: reading, validating, and expanding rankings into pairs.

One format is shared by everyone who writes or reads preferences (rejection sampling writes it,
the reward model and DPO read it). A row is

    {"prompt": [messages], "chosen": [assistant message(s)], "rejected": [...],
     optional "edited": [...], optional "margin": float, optional "similar": bool,
     optional "chosen_token_ids"/"rejected_token_ids"/"chosen_logprobs"/"rejected_logprobs",
     optional "sampler_model": path}

Llama 3 (§4.1.2) collects rankings of up to three responses, edited > chosen > rejected, and
trains on every implied pair; pairs annotators marked as "similar" carry little signal and are
dropped. Those rules live here so the reward model and DPO apply them identically.

Bad rows (missing field, empty response, identical chosen/rejected) either raise an error that
names the file and row, or are skipped and counted, by the ``bad_rows`` policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from herd.core.chat import ChatFormatError, validate_conversation

BadRows = Literal["fail", "skip"]
RowFormat = Literal["preference", "hh-rlhf"]
RANK_ORDER: tuple[str, ...] = ("edited", "chosen", "rejected")
SAMPLER_KEYS: tuple[str, ...] = (
    "chosen_token_ids",
    "rejected_token_ids",
    "chosen_logprobs",
    "rejected_logprobs",
    "sampler_model",
)


class PreferenceDataError(ValueError):
    """A preference row that cannot be used; the message names the file and row."""


@dataclass
class PreferencePair:
    """One (prompt, better response, worse response) pair, ready for a learner."""

    prompt: list[dict]
    chosen: list[dict]
    rejected: list[dict]
    margin: float | None = None
    source: str = ""
    """``file:row`` (and which ranking pair), for error messages downstream."""
    sampler: dict[str, Any] = field(default_factory=dict)
    """Token ids / log-probs recorded by the sampler, when the pair came from rejection sampling."""


@dataclass
class LoadReport:
    """What loading did: rows read, pairs produced, and why rows or pairs were dropped."""

    rows: int = 0
    pairs: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    similar_filtered: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def read_rows(path: Path | str) -> Iterable[tuple[int, dict]]:
    """Yield ``(row_number, row)`` from a JSONL file (1-based lines) or a ``datasets`` directory."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: preference data not found")
    if p.is_dir():
        from datasets import load_from_disk

        for i, row in enumerate(load_from_disk(str(p))):
            yield i, dict(row)
        return
    opener = open
    if p.suffix == ".gz":
        import gzip

        opener = gzip.open  # type: ignore[assignment]
    with opener(p, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield i, json.loads(line)
            except json.JSONDecodeError as e:
                raise PreferenceDataError(f"{p}:{i}: not valid JSON: {e}") from e


def _as_messages(value: Any, what: str) -> list[dict]:
    """A response may be given as one assistant message, a list of them, or a bare string."""
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value:
        return [dict(m) for m in value]
    raise PreferenceDataError(f"'{what}' is missing or empty")


def _check_response(messages: list[dict], what: str) -> None:
    try:
        validate_conversation(messages)
    except ChatFormatError as e:
        raise PreferenceDataError(f"'{what}': {e}") from e
    if messages[-1]["role"] != "assistant":
        raise PreferenceDataError(f"'{what}' must end with an assistant message")
    if not any(m["content"].strip() for m in messages if m["role"] == "assistant"):
        raise PreferenceDataError(f"'{what}' is an empty response")


def parse_row(row: dict) -> tuple[list[dict], list[tuple[str, list[dict]]], dict]:
    """Validate one row: its prompt, its ranked responses (best first), and the sampler record.

    Raises :class:`PreferenceDataError` (without location; the caller adds file and row).
    """
    if not isinstance(row, dict):
        raise PreferenceDataError("row is not a JSON object")
    if "prompt" not in row:
        raise PreferenceDataError("missing field 'prompt'")
    prompt = row["prompt"]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    try:
        validate_conversation(prompt)
    except ChatFormatError as e:
        raise PreferenceDataError(f"'prompt': {e}") from e
    for key in ("chosen", "rejected"):
        if key not in row or row[key] in (None, "", []):
            raise PreferenceDataError(f"missing field '{key}'")
    ranked: list[tuple[str, list[dict]]] = []
    for key in RANK_ORDER:
        if row.get(key) in (None, "", []):
            continue
        msgs = _as_messages(row[key], key)
        _check_response(msgs, key)
        ranked.append((key, msgs))
    texts = [json.dumps(m, sort_keys=True) for _, m in ranked]
    for i in range(len(ranked)):
        for j in range(i + 1, len(ranked)):
            if texts[i] == texts[j]:
                raise PreferenceDataError(f"'{ranked[i][0]}' and '{ranked[j][0]}' are identical")
    sampler = {k: row[k] for k in SAMPLER_KEYS if row.get(k) is not None}
    return prompt, ranked, sampler


def expand_ranking(ranked: list[tuple[str, list[dict]]]) -> list[tuple[str, str, list[dict], list[dict]]]:
    """Every implied pair of a ranking, best first: 3 responses give 3 pairs, 2 give 1.

    Llama 3 §4.1.2: "edited > chosen > rejected"; each (better, worse) combination is a pair.
    """
    pairs = []
    for i in range(len(ranked)):
        for j in range(i + 1, len(ranked)):
            pairs.append((ranked[i][0], ranked[j][0], ranked[i][1], ranked[j][1]))
    return pairs


def row_pairs(row: dict, source: str) -> list[PreferencePair]:
    """Pairs of one validated row. Sampler records only apply to the (chosen, rejected) pair."""
    prompt, ranked, sampler = parse_row(row)
    margin = row.get("margin")
    if margin is not None and not isinstance(margin, (int, float)):
        raise PreferenceDataError(f"'margin' must be a number, got {margin!r}")
    out = []
    for better, worse, chosen, rejected in expand_ranking(ranked):
        rec = sampler if (better, worse) == ("chosen", "rejected") else {}
        out.append(
            PreferencePair(
                prompt, chosen, rejected,
                margin=float(margin) if margin is not None else None,
                source=f"{source} ({better}>{worse})",
                sampler=rec,
            )
        )
    return out


def _convert(row: Any, fmt: RowFormat) -> Any:
    """HH-RLHF rows go through the shared converter (herd.core.chat_data) first."""
    if fmt == "preference":
        return row
    from herd.core.chat_data import hh_to_preference

    try:
        return hh_to_preference(row)
    except ChatFormatError as e:
        raise PreferenceDataError(f"HH-RLHF row: {e}") from e


def load_pairs(
    path: Path | str,
    bad_rows: BadRows = "fail",
    filter_similar: bool = True,
    max_rows: int | None = None,
    fmt: RowFormat = "preference",
) -> tuple[list[PreferencePair], LoadReport]:
    """Read a preference file into pairs: rankings expanded, similar pairs dropped.

    ``bad_rows="fail"`` raises on the first bad row naming ``file:row``; ``'skip'`` counts it
    in the report by reason and goes on.
    """
    report = LoadReport()
    pairs: list[PreferencePair] = []
    for n, row in read_rows(path):
        if max_rows is not None and report.rows >= max_rows:
            break
        report.rows += 1
        source = f"{path}:{n}"
        if filter_similar and isinstance(row, dict) and row.get("similar") is True:
            report.similar_filtered += 1
            continue
        try:
            got = row_pairs(_convert(row, fmt), source)
        except PreferenceDataError as e:
            if bad_rows == "fail":
                raise PreferenceDataError(f"{source}: {e}") from None
            report.skip(str(e))
            continue
        pairs.extend(got)
    report.pairs = len(pairs)
    if not pairs:
        raise PreferenceDataError(f"{path}: no usable preference pairs ({report})")
    return pairs, report


def split_pairs(pairs: list[PreferencePair], eval_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic shuffle-and-split by prompt, so no prompt lands on both sides."""
    import random

    if eval_fraction <= 0:
        return pairs, []
    keys = sorted({json.dumps(p.prompt, sort_keys=True) for p in pairs})
    random.Random(seed).shuffle(keys)
    n_eval = max(1, int(round(len(keys) * eval_fraction)))
    held = set(keys[:n_eval])
    train = [p for p in pairs if json.dumps(p.prompt, sort_keys=True) not in held]
    evals = [p for p in pairs if json.dumps(p.prompt, sort_keys=True) in held]
    return train, evals


@dataclass
class PreferenceDataConfig:
    """Where preference pairs come from and how bad or weak rows are treated."""

    path: str
    """Preference JSONL (``.jsonl`` / ``.jsonl.gz``) or a ``datasets`` directory (format above)."""
    bad_rows: BadRows = "fail"
    """'fail': stop at the first bad row naming file and row; 'skip': drop it and count it."""
    filter_similar: bool = True
    """Drop rows marked ``"similar": true`` (Llama 3 §4.1.2: little signal, noisy labels)."""
    max_rows: int | None = None
    """Read only the first N rows (quick runs)."""
    format: RowFormat = "preference"
    """'preference' (the rows above) or 'hh-rlhf' (Anthropic ``{"chosen", "rejected"}`` dialogues)."""


def load_from_config(cfg: PreferenceDataConfig) -> tuple[list[PreferencePair], LoadReport]:
    return load_pairs(cfg.path, cfg.bad_rows, cfg.filter_similar, cfg.max_rows, cfg.format)
