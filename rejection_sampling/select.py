"""Selection rules: best-of-K for SFT, best-vs-worst DPO pairs, safety pairs.

Pure functions over :class:`Candidate` (a scored sample), so the rules can be property-tested on
their own. The invariants, all tested:

* a kept sample or a 'chosen' response is never truncated, never unsafe, and passes every gate;
* results do not depend on the order the K samples come in (ties go to the lowest sample index
  for 'best', the highest for 'worst');
* a pair's rank-score gap is at least the margin when both sides pass the gates, and equal scores
  never pair; a gate difference (correct over wrong) is a preference by itself;
* a safety pair's 'chosen' is safe and its 'rejected' unsafe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from herd.rejection_sampling.config import SelectionConfig


@dataclass(frozen=True)
class Candidate:
    """One sample of a prompt as selection sees it."""

    k: int
    """Sample index within the prompt (the tie-break)."""
    scores: Mapping[str, float]
    """Scores of the scorers that applied to this prompt."""
    truncated: bool = False
    safe: bool = True
    p_unsafe: float = 0.0
    text: str = ""


@dataclass(frozen=True)
class Ranking:
    """How samples compare: gates first (passing beats failing), then the weighted score."""

    weights: Mapping[str, float]
    require: Mapping[str, float]

    @classmethod
    def from_config(cls, cfg: SelectionConfig, scorer_names: Sequence[str]) -> "Ranking":
        """Resolve ``rank_by`` (None = the only scorer) and check every name is a known scorer."""
        names = list(scorer_names)
        weights = cfg.rank_by
        if weights is None:
            if len(names) != 1:
                raise ValueError(
                    f"selection.rank_by must name the scorer(s) that rank samples (scorers: {names})"
                )
            weights = {names[0]: 1.0}
        if not weights:
            raise ValueError("selection.rank_by is empty: name at least one scorer")
        for section, mapping in (("rank_by", weights), ("require", cfg.require)):
            for name in mapping:
                if name not in names:
                    raise ValueError(f"selection.{section}: unknown scorer {name!r} (scorers: {names})")
        return cls(dict(weights), dict(cfg.require))

    def score(self, c: Candidate) -> float:
        """Weighted sum over the ranking scorers that applied to this sample."""
        return sum(w * c.scores[n] for n, w in self.weights.items() if n in c.scores)

    def passes(self, c: Candidate) -> bool:
        """Every gate that applies is met (a gate on a scorer that did not run is skipped)."""
        return all(c.scores[n] >= t for n, t in self.require.items() if n in c.scores)

    def eligible(self, c: Candidate) -> bool:
        """May be kept for SFT or be 'chosen' (an empty reply never is: SFT would refuse it)."""
        return (
            not c.truncated and c.safe and bool(c.text.strip()) and self.passes(c)
            and math.isfinite(self.score(c))
        )


@dataclass(frozen=True)
class Pair:
    chosen: Candidate
    rejected: Candidate
    kind: str
    """'best_worst' or 'safety'."""
    margin: float
    """Rank score of chosen minus that of rejected."""


def _best(cands: Sequence[Candidate], ranking: Ranking) -> Candidate | None:
    eligible = [c for c in cands if ranking.eligible(c)]
    if not eligible:
        return None
    return max(eligible, key=lambda c: (ranking.score(c), -c.k))


def select_best(
    cands: Sequence[Candidate], ranking: Ranking, min_score: float | None = None
) -> tuple[Candidate | None, str]:
    """The sample SFT keeps for this prompt, or None with the reason it keeps none."""
    best = _best(cands, ranking)
    if best is None:
        return None, "no_eligible"
    if min_score is not None and ranking.score(best) < min_score:
        return None, "below_min_score"
    return best, "kept"


def make_pair(
    cands: Sequence[Candidate],
    ranking: Ranking,
    margin: float = 0.0,
    rejected_may_be_truncated: bool = True,
) -> tuple[Pair | None, str]:
    """Best eligible sample vs the worst other sample, or None with the reason."""
    chosen = _best(cands, ranking)
    if chosen is None:
        return None, "no_eligible"
    pool = [
        c for c in cands
        if c.k != chosen.k and (rejected_may_be_truncated or not c.truncated) and math.isfinite(ranking.score(c))
    ]
    if not pool:
        return None, "no_rejected"
    rejected = min(pool, key=lambda c: (ranking.passes(c), ranking.score(c), -c.k))
    gap = ranking.score(chosen) - ranking.score(rejected)
    if chosen.text == rejected.text:
        return None, "tie"
    if ranking.passes(rejected):
        if gap == 0:
            return None, "tie"
        if gap < 0:
            return None, "no_worse_sample"
        if gap < margin:
            return None, "below_margin"
    return Pair(chosen, rejected, "best_worst", gap), "kept"


def make_safety_pair(
    cands: Sequence[Candidate], ranking: Ranking, regular: Pair | None = None
) -> tuple[Pair | None, str]:
    """A safe, finished sample chosen over the most unsafe one (highest P(unsafe)).

    'Chosen' is the regular pair's chosen when there is one, else the best safe finished sample
    (gates not required: for safety, a safe refusal beats an unsafe answer whatever its score).
    """
    unsafe = [c for c in cands if not c.safe]
    if not unsafe:
        return None, "no_unsafe"
    if regular is not None:
        chosen = regular.chosen
    else:
        safe = [c for c in cands if c.safe and not c.truncated]
        if not safe:
            return None, "no_safe"
        chosen = max(safe, key=lambda c: (ranking.passes(c), ranking.score(c), -c.k))
    rejected = max(unsafe, key=lambda c: (c.p_unsafe, -c.k))
    if regular is not None and regular.rejected.k == rejected.k:
        return None, "duplicate"
    if chosen.text == rejected.text:
        return None, "tie"
    return Pair(chosen, rejected, "safety", ranking.score(chosen) - ranking.score(rejected)), "kept"
