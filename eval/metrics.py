"""The numbers of an evaluation, as pure functions of scores and labels.

Kept free of models and I/O so each one can be checked by hand on fixed inputs (tests/eval).
Sources:

* pass@k: the unbiased estimator of Chen et al. (2021), "Evaluating Large Language Models Trained
  on Code", arXiv:2107.03374, eq. 1, in its numerically stable product form (their Figure 3).
* Win-rate interval: the Wilson score interval (Wilson, 1927, JASA 22:209-212), which Brown, Cai &
  DasGupta (2001, Statistical Science 16(2):101-133) recommend over the normal (Wald) interval:
  it stays inside [0, 1] and keeps its coverage at small n and at rates near 0 or 1, which is
  exactly where eval sets of a few dozen prompts live.
* VR / FRR: the Llama 3 paper's safety metrics (§5.4): VR = share of responses to unsafe prompts
  that violate the policy; FRR = share of safe/borderline prompts that are refused.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np


def quantile_key(prefix: str, q: float) -> str:
    """``("reward", 0.1) -> "reward_p10"``; non-integer percents keep a digit (p2.5 -> p2_5)."""
    pct = q * 100
    label = f"{pct:g}".replace(".", "_")
    return f"{prefix}_p{label}"


def summary_stats(values: Sequence[float], prefix: str, quantiles: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, standard deviation (population), count and quantiles (numpy 'linear', i.e. type 7)."""
    out: dict[str, float | int | None] = {f"{prefix}_n": len(values)}
    if not values:
        out.update({f"{prefix}_mean": None, f"{prefix}_std": None})
        out.update({quantile_key(prefix, q): None for q in quantiles})
        return out
    arr = np.asarray(values, dtype=np.float64)
    out[f"{prefix}_mean"] = float(arr.mean())
    out[f"{prefix}_std"] = float(arr.std())
    for q in quantiles:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q} is outside [0, 1]")
        out[quantile_key(prefix, q)] = float(np.quantile(arr, q))
    return out


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion successes / n.

    center = (p + z²/2n) / (1 + z²/n),  half = z / (1 + z²/n) · sqrt(p(1-p)/n + z²/4n²).
    Returns (nan, nan) for n = 0: no data, no interval.
    """
    if n == 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} not in [0, n={n}]")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0 (or n) successes the bound is exactly 0 (or 1); pin it against float round-off.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return (low, high)


@dataclass(frozen=True)
class WinRate:
    """Pairwise outcome counts of policy vs baseline; ties are kept apart from wins and losses."""

    wins: int
    losses: int
    ties: int
    ci_low: float
    ci_high: float

    @property
    def n(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def win_rate(self) -> float:
        """wins / all comparisons (ties count as not-won; see tie_rate)."""
        return self.wins / self.n if self.n else math.nan


def win_rate(
    policy_scores: Sequence[float],
    baseline_scores: Sequence[float],
    tie_margin: float = 0.0,
    confidence: float = 0.95,
) -> WinRate:
    """Compare per-prompt reward of policy and baseline; |diff| <= tie_margin is a tie.

    The interval is the Wilson interval on wins / n (all comparisons, ties included in n).
    """
    if len(policy_scores) != len(baseline_scores):
        raise ValueError(f"win rate needs paired scores: {len(policy_scores)} policy vs {len(baseline_scores)} baseline")
    wins = losses = ties = 0
    for a, b in zip(policy_scores, baseline_scores):
        if abs(a - b) <= tie_margin:
            ties += 1
        elif a > b:
            wins += 1
        else:
            losses += 1
    low, high = wilson_interval(wins, wins + losses + ties, confidence)
    return WinRate(wins, losses, ties, low, high)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i) to avoid huge binomials (Chen et al. 2021).
    """
    if k > n:
        raise ValueError(f"pass@{k} needs at least k samples per prompt, got n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"correct count c={c} not in [0, n={n}]")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(correct_counts: Sequence[int], n: int, k: int) -> float:
    """pass@k averaged over prompts (each prompt had n samples, correct_counts[i] correct)."""
    if not correct_counts:
        return math.nan
    return float(np.mean([pass_at_k(n, c, k) for c in correct_counts]))


def rate_by_category(
    flags: Sequence[bool], categories: Sequence[str | None], prefix: str
) -> dict[str, float | int]:
    """Overall rate of ``flags`` plus one rate per category: ``{prefix}``, ``{prefix}_n``,
    ``{prefix}/<category>`` and ``{prefix}_n/<category>``. Rows without a category count only
    in the overall rate."""
    if len(flags) != len(categories):
        raise ValueError("one category per flag expected")
    out: dict[str, float | int] = {
        prefix: (sum(flags) / len(flags)) if flags else math.nan,
        f"{prefix}_n": len(flags),
    }
    groups: dict[str, list[bool]] = defaultdict(list)
    for f, c in zip(flags, categories):
        if c:
            groups[c].append(bool(f))
    for c in sorted(groups):
        out[f"{prefix}/{c}"] = sum(groups[c]) / len(groups[c])
        out[f"{prefix}_n/{c}"] = len(groups[c])
    return out


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: max |F_a(x) - F_b(x)| over the pooled values.

    A scale-free measure of how far the length distribution moved (0 = identical, 1 = disjoint);
    a mean can hide a distribution that split in two, which is how length hacking often starts.
    """
    if not len(a) or not len(b):
        return math.nan
    xa, xb = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([xa, xb])
    fa = np.searchsorted(xa, grid, side="right") / len(xa)
    fb = np.searchsorted(xb, grid, side="right") / len(xb)
    return float(np.max(np.abs(fa - fb)))


def length_metrics(
    lengths: Sequence[int], truncated: Sequence[bool], reference: Sequence[int] | None
) -> dict[str, float | int | None]:
    """Length summary of the policy's responses and its drift against ``reference`` lengths."""
    out: dict[str, float | int | None] = summary_stats(list(map(float, lengths)), "length", [0.5, 0.9])
    out["length_truncated_rate"] = (sum(truncated) / len(truncated)) if truncated else None
    if reference:
        ref_mean = float(np.mean(reference))
        out["length_reference_mean"] = ref_mean
        out["length_drift"] = (out["length_mean"] - ref_mean) if lengths else None  # type: ignore[operator]
        out["length_drift_ratio"] = (out["length_mean"] / ref_mean) if lengths and ref_mean else None  # type: ignore[operator]
        out["length_ks"] = ks_statistic(lengths, reference) if lengths else None
    else:
        out.update({"length_reference_mean": None, "length_drift": None, "length_drift_ratio": None, "length_ks": None})
    return out
