"""The report's figures, drawn with matplotlib's Agg backend (no display needed).

Each ``*_figure`` function returns the Figure without saving it, so tests can count its series
before :func:`save_png` writes it. Colours are fixed per round index (tab10) so a round keeps its
colour in every figure.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from herd.core.artifacts import atomic_write_bytes  # noqa: E402

#: (metrics key, legend label, panel) of the per-round line plot; values are shares shown in %.
RATE_SERIES: tuple[tuple[str, str, str, str], ...] = (
    ("verifier_accuracy", "verifier accuracy (greedy)", "capability", "tab:blue"),
    ("verifier_pass_at_max", "verifier pass@k", "capability", "tab:cyan"),
    ("win_rate", "win rate vs previous round", "capability", "tab:green"),
    ("violation_rate", "violation rate (VR, unsafe prompts)", "safety", "tab:red"),
    ("false_refusal_rate", "false refusal rate (FRR, safe prompts)", "safety", "tab:purple"),
)


def round_label(metrics: Mapping, position: int) -> str:
    r = metrics.get("round")
    return f"round {r if r is not None else position}"


def _pass_at_max(metrics: Mapping) -> tuple[int, float] | None:
    ks = [int(k.rsplit("_", 1)[1]) for k in metrics if k.startswith("verifier_pass_at_") and metrics[k] is not None]
    if not ks:
        return None
    k = max(ks)
    return k, metrics[f"verifier_pass_at_{k}"]


def _value(metrics: Mapping, key: str) -> float | None:
    if key == "verifier_pass_at_max":
        pk = _pass_at_max(metrics)
        return pk[1] if pk else None
    v = metrics.get(key)
    return None if v is None else float(v)


def _color(i: int):
    return plt.get_cmap("tab10")(i % 10)


def _distribution_figure(
    history: Sequence[Mapping], values: Sequence[Sequence[float]], title: str, xlabel: str, bins: int
) -> Figure:
    """Overlaid step histograms, one per round that has values (share of responses per bin)."""
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    pooled = np.concatenate([np.asarray(v, float) for v in values if len(v)]) if any(len(v) for v in values) else np.array([])
    edges = np.histogram_bin_edges(pooled, bins=bins) if pooled.size else None
    for i, (m, v) in enumerate(zip(history, values)):
        if not len(v):
            continue
        arr = np.asarray(v, float)
        ax.hist(arr, bins=edges, weights=np.full(arr.size, 100.0 / arr.size), histtype="step", linewidth=2,
                color=_color(i), label=f"{round_label(m, i)} (mean {arr.mean():.3g}, n={arr.size})")
        ax.axvline(arr.mean(), color=_color(i), linestyle="--", linewidth=1)  # the mean, unlabelled
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of responses (%)")
    if pooled.size:
        ax.legend(title="policy (dashed line = mean)", loc="best")
    else:
        ax.text(0.5, 0.5, "no per-sample data recorded", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3)
    return fig


def reward_figure(history: Sequence[Mapping], rewards: Sequence[Sequence[float]]) -> Figure:
    """Reward-model score distribution of each round's greedy responses on the held-out prompts."""
    return _distribution_figure(history, rewards, "Reward distribution per round (held-out prompts)",
                                "reward model score (logit, higher = preferred)", bins=20)


def length_figure(history: Sequence[Mapping], lengths: Sequence[Sequence[float]]) -> Figure:
    """Response length distribution per round: a widening or shifting curve flags length hacking."""
    return _distribution_figure(history, lengths, "Response length per round (held-out prompts)",
                                "response length (tokens, stop token excluded)", bins=20)


def rates_figure(history: Sequence[Mapping]) -> Figure:
    """Accuracy / pass@k / win rate (left) and VR / FRR (right) per round, in percent.

    The win-rate points carry their Wilson confidence intervals as vertical bars. Only metrics present in some round are
    drawn, so the number of lines equals the number of metrics the evaluations computed.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained", sharex=True)
    panels = {"capability": axes[0], "safety": axes[1]}
    xs = list(range(len(history)))
    ks = {pk[0] for m in history if (pk := _pass_at_max(m))}
    for key, label, panel, color in RATE_SERIES:
        ys = [_value(m, key) for m in history]
        if all(y is None for y in ys):
            continue
        if key == "verifier_pass_at_max":
            label = f"verifier pass@{ks.pop()}" if len(ks) == 1 else "verifier pass@k (largest k)"
        ax = panels[panel]
        y = np.array([np.nan if v is None else 100 * v for v in ys])
        ax.plot(xs, y, marker="o", linewidth=2, color=color, label=label)
        for x, v in zip(xs, y):
            if not np.isnan(v):
                ax.annotate(f"{v:.1f}", (x, v), textcoords="offset points", xytext=(6, 4), fontsize=8, color=color)
        if key == "win_rate":
            lo = np.array([np.nan if m.get("win_rate_ci_low") is None else 100 * m["win_rate_ci_low"] for m in history])
            hi = np.array([np.nan if m.get("win_rate_ci_high") is None else 100 * m["win_rate_ci_high"] for m in history])
            # vertical bars (a LineCollection): a band would vanish when only one round has a baseline
            ax.vlines(xs, lo, hi, colors=color, alpha=0.5, linewidth=6, label="win rate 95% CI (Wilson)")
    for name, ax in panels.items():
        ax.set_title("Capability" if name == "capability" else "Safety (lower is better)")
        ax.set_xlabel("round")
        ax.set_ylabel("percent (%)")
        ax.set_ylim(-2, 102)
        ax.set_xticks(xs, [round_label(m, i).split()[1] for i, m in enumerate(history)])
        ax.set_xlim(-0.3, max(xs) + 0.5)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(loc="best", fontsize="small")
        else:
            ax.text(0.5, 0.5, "not evaluated", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle("Evaluation metrics per round")
    return fig


def save_png(fig: Figure, path: Path | str, dpi: int = 110) -> Path:
    """Render to PNG in memory and write atomically; the figure is closed afterwards."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
