"""Quality and difficulty scores, their OR-combination, and the dedup priority.

Llama 3 §4.2.3: a row is *high quality* when its reward-model score is in the top quartile OR
the LLM judge gives it the maximum rubric score ("combining these signals yields the best
recall"). Semantic dedup then keeps, inside each cluster, rows in order of quality x difficulty.
To multiply signals of different scales both factors are mapped into (0, 1]: the RM score by its
percentile rank, judge scores as s/3, the intention count as min(c, cap)/cap; when a factor has
two signals their mean is used, and a factor with no signal is 1 (it does not reorder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class QualityScores:
    """Per-row quality signals and the OR decision."""

    rm_score: list[float] | None
    rm_threshold: float | None
    """The RM score at the top-fraction boundary (e.g. the 75th percentile)."""
    rm_high: list[bool] | None
    judge: list[int | None] | None
    judge_high: list[bool] | None
    high_quality: list[bool] | None
    """rm_high OR judge_high; None when no quality signal was computed."""
    norm: list[float]
    """Quality factor of the dedup priority, in (0, 1]."""


def percentile_ranks(values: Sequence[float]) -> np.ndarray:
    """Average-rank percentile in (0, 1]: the largest value gets 1, ties share their mean rank."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v), dtype=np.float64)
    ranks[order] = np.arange(1, len(v) + 1)
    _, inverse = np.unique(v, return_inverse=True)
    mean_rank = np.bincount(inverse, weights=ranks) / np.bincount(inverse)
    return mean_rank[inverse] / len(v)


def combine_quality(
    rm_scores: Sequence[float] | None,
    judge: Sequence[int | None] | None,
    top_fraction: float = 0.25,
) -> QualityScores:
    """Mark rows high quality by RM top fraction OR judge score 3, and build the quality factor."""
    n = len(rm_scores) if rm_scores is not None else len(judge) if judge is not None else 0
    rm_high = threshold = None
    rm_pct = None
    if rm_scores is not None:
        arr = np.asarray(rm_scores, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            bad = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise ValueError(f"reward model returned a non-finite score for row {bad}")
        threshold = float(np.quantile(arr, 1.0 - top_fraction)) if n else None
        rm_high = [bool(s >= threshold) for s in arr]
        rm_pct = percentile_ranks(arr) if n else None
    judge_high = None if judge is None else [s == 3 for s in judge]
    high = None
    if rm_high is not None or judge_high is not None:
        high = [bool((rm_high and rm_high[i]) or (judge_high and judge_high[i])) for i in range(n)]
    norm = []
    for i in range(n):
        parts = [] if rm_pct is None else [rm_pct[i]]
        if judge is not None and judge[i] is not None:
            parts.append(judge[i] / 3.0)
        norm.append(float(np.mean(parts)) if parts else 1.0)
    return QualityScores(
        rm_score=None if rm_scores is None else [float(s) for s in rm_scores],
        rm_threshold=threshold,
        rm_high=rm_high,
        judge=None if judge is None else list(judge),
        judge_high=judge_high,
        high_quality=high,
        norm=norm,
    )


def difficulty_norm(
    intentions: Sequence[int], judge: Sequence[int | None] | None, cap: int
) -> list[float]:
    """Difficulty factor in (0, 1]: min(intentions, cap)/cap, averaged with judge/3 when judged.

    An unparsable judge answer contributes nothing for that row (its intention factor stands).
    """
    out = []
    for i, count in enumerate(intentions):
        parts = [max(1, min(count, cap)) / cap]
        if judge is not None and judge[i] is not None:
            parts.append(judge[i] / 3.0)
        out.append(float(np.mean(parts)))
    return out
