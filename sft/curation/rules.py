"""Rule-based cleaning (Llama 3 §4.2.3 "Data cleaning"), each rule with its own counts.

The paper names the symptoms (excessive emojis or exclamation points, overused apologetic tone)
and says it balances them; the thresholds here are ours and configurable. Rules run in a fixed
order and each sees only the survivors of the previous ones, so the per-rule counts add up:
``rows_in(rule k+1) == rows_out(rule k)``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable

from herd.sft.curation.config import (
    ApologyRule,
    EmptyRule,
    ExpressivenessRule,
    LanguageRule,
    RulesConfig,
    TruncationRule,
)
from herd.sft.curation.language import detect_language
from herd.sft.curation.rows import assistant_texts, dialog_text, strip_code


@dataclass
class RuleCount:
    """Rows entering and leaving one rule."""

    rule: str
    rows_in: int
    rows_out: int

    @property
    def removed(self) -> int:
        return self.rows_in - self.rows_out


# --- per-row predicates (True = drop) -------------------------------------------------------

def is_empty(row: dict, rule: EmptyRule) -> bool:
    """No assistant turn, or an assistant turn with fewer than ``min_chars`` visible characters."""
    texts = assistant_texts(row)
    return not texts or any(len(t.strip()) < rule.min_chars for t in texts)


_TERMINAL = (".", "!", "?", '"', "'", ")", "]", "```", "”", "’", "。", "！", "？")


def is_truncated(row: dict, rule: TruncationRule) -> bool:
    """Sampler marker columns first (exact), then text heuristics on the last response."""
    for col in rule.marker_columns:
        value = row.get(col)
        if value is True or value == "length":
            return True
    texts = assistant_texts(row)
    if not texts:
        return False
    last = texts[-1].rstrip()
    if rule.unclosed_code_fence and last.count("```") % 2 == 1:
        return True
    return rule.require_terminal_punctuation and not last.endswith(_TERMINAL)


def is_wrong_language(row: dict, rule: LanguageRule) -> bool:
    """The responses (code stripped) are confidently in a language other than the expected one."""
    if rule.expected is None:
        return False
    text = strip_code("\n".join(assistant_texts(row)))
    detected = detect_language(text, min_letters=rule.min_letters)
    return detected not in ("und", rule.expected)


_EMOJI_RANGES = (
    (0x1F300, 0x1FAFF), (0x2600, 0x27BF), (0x1F1E6, 0x1F1FF), (0x2B50, 0x2B55), (0x231A, 0x231B),
    (0x23E9, 0x23FA),
)
_ZWJ = "\u200d"


def count_emojis(text: str) -> int:
    """Pictographs, counting a zero-width-joiner sequence (one rendered emoji) once."""
    n, prev = 0, ""
    for ch in text:
        cp = ord(ch)
        if any(lo <= cp <= hi for lo, hi in _EMOJI_RANGES) and prev != _ZWJ:
            n += 1
        prev = ch
    return n


_EXCLAIM = re.compile(r"!(?!=)")


def count_exclamations(text: str) -> int:
    """'!' used as punctuation: outside code, not the '!=' operator."""
    return len(_EXCLAIM.findall(strip_code(text)))


def is_overexpressive(row: dict, rule: ExpressivenessRule) -> bool:
    for text in assistant_texts(row):
        if count_emojis(text) > rule.max_emojis or count_exclamations(text) > rule.max_exclamations:
            return True
    return False


# --- set-level rule -------------------------------------------------------------------------

def _apology_pattern(phrases: list[str]) -> re.Pattern:
    alternatives = "|".join(re.escape(p.lower().replace("’", "'")) for p in phrases)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def is_apologetic(row: dict, pattern: re.Pattern) -> bool:
    text = " ".join(assistant_texts(row)).lower().replace("’", "'")
    return pattern.search(text) is not None


def balance_apologies(rows: list[dict], rule: ApologyRule) -> list[dict]:
    """Drop apologetic rows until they are at most ``target_share`` of what remains.

    With A apologetic and N other rows, ``k = floor(s * N / (1 - s))`` apologetic rows stay, so
    ``k / (k + N) <= s``. Which ones stay is a seeded hash of the dialog text, so the choice does
    not depend on row order and a rerun picks the same rows.
    """
    pattern = _apology_pattern(rule.phrases)
    flags = [is_apologetic(r, pattern) for r in rows]
    n_apol = sum(flags)
    n_other = len(rows) - n_apol
    share = rule.target_share
    if n_apol == 0 or n_apol <= share * len(rows):
        return rows
    keep_apol = n_apol if share >= 1.0 else int(share * n_other / (1.0 - share) + 1e-9)

    def key(i: int) -> str:
        return hashlib.sha256(f"{rule.seed}\0{dialog_text(rows[i])}".encode()).hexdigest()

    chosen = set(sorted((i for i, f in enumerate(flags) if f), key=key)[:keep_apol])
    return [r for i, (r, f) in enumerate(zip(rows, flags)) if not f or i in chosen]


def record_step(
    name: str, before: list[dict], after: list[dict], counts: list[RuleCount], removed: list[dict] | None
) -> None:
    """Count one step and, when asked, keep what it dropped (tagged with the step's name)."""
    counts.append(RuleCount(name, len(before), len(after)))
    if removed is not None and len(after) < len(before):
        survivors = {id(r) for r in after}
        removed.extend({**r, "removed_by": name} for r in before if id(r) not in survivors)


def apply_rules(
    rows: list[dict], cfg: RulesConfig, removed: list[dict] | None = None
) -> tuple[list[dict], list[RuleCount]]:
    """Run the enabled rules in order; return the survivors and one count per enabled rule.
    Dropped rows are appended to ``removed`` (with a ``removed_by`` column) when it is given."""
    steps: list[tuple[str, Callable[[list[dict]], list[dict]]]] = []
    if cfg.empty.enabled:
        steps.append(("empty", lambda rs: [r for r in rs if not is_empty(r, cfg.empty)]))
    if cfg.truncated.enabled:
        steps.append(("truncated", lambda rs: [r for r in rs if not is_truncated(r, cfg.truncated)]))
    if cfg.language.expected is not None:
        steps.append(("wrong_language", lambda rs: [r for r in rs if not is_wrong_language(r, cfg.language)]))
    if cfg.expressive.enabled:
        steps.append(("excessive_emoji_or_exclamation",
                      lambda rs: [r for r in rs if not is_overexpressive(r, cfg.expressive)]))
    if cfg.apology.enabled:
        steps.append(("apology_balance", lambda rs: balance_apologies(rs, cfg.apology)))
    counts: list[RuleCount] = []
    for name, step in steps:
        after = step(rows)
        record_step(name, rows, after, counts, removed)
        rows = after
    return rows, counts
