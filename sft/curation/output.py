"""Writing a curation result: the dataset, its summary and the score histograms, atomically.

The output directory is built under a temporary name and renamed into place whole, so a reader
(SFT, the round runner) sees either the previous result or the complete new one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from herd.core.artifacts import atomic_dir, atomic_write_json, atomic_write_jsonl
from herd.sft.curation.pipeline import CurationResult

DATA_FILE = "data.jsonl"
REMOVED_FILE = "removed.jsonl"
SUMMARY_FILE = "summary.json"

_HISTOGRAMS = {
    "rm_score": ("Reward-model score", "rm_threshold"),
    "judge_quality": ("LLM-judge quality (1-3)", None),
    "intentions": ("Intention count (Instag-style proxy)", None),
    "judge_difficulty": ("LLM-judge difficulty (1-3)", None),
    "dedup_max_sim": ("Max cosine to an already-kept dialog in its cluster", "dedup_threshold"),
}


def _plot_histogram(values: list[float], title: str, line: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    discrete = all(float(v).is_integer() for v in values) and len(set(values)) <= 12
    if discrete:
        lo, hi = int(min(values)), int(max(values))
        ax.hist(values, bins=[b - 0.5 for b in range(lo, hi + 2)], rwidth=0.8)
    else:
        ax.hist(values, bins=40)
    if line is not None:
        ax.axvline(line, color="red", linestyle="--", label=f"{line:.3g}")
        ax.legend()
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("rows")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_histograms(result: CurationResult, out_dir: Path) -> list[str]:
    """One PNG per non-empty score distribution; returns the file names written."""
    lines = {
        "rm_threshold": result.summary["quality"].get("rm_threshold"),
        "dedup_threshold": result.summary["dedup"].get("threshold"),
    }
    written = []
    for name, (title, line_key) in _HISTOGRAMS.items():
        values = result.distributions.get(name) or []
        if not values:
            continue
        if name == "dedup_max_sim":
            values = [v for v in values if v > -1.0]  # the first row of a cluster has no neighbour
            if not values:
                continue
        fname = f"hist_{name}.png"
        _plot_histogram(values, title, lines.get(line_key) if line_key else None, out_dir / fname)
        written.append(fname)
    return written


def write_curated(result: CurationResult, out_dir: Path | str, config: dict[str, Any] | None = None) -> Path:
    """Write ``data.jsonl`` (``{"messages", ...score columns}``), ``removed.jsonl`` (the dropped
    rows with ``removed_by``), ``summary.json`` and the histogram PNGs into ``out_dir``,
    replacing it as a whole."""
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        atomic_write_jsonl(tmp / DATA_FILE, result.rows)
        atomic_write_jsonl(tmp / REMOVED_FILE, result.removed)
        plots = write_histograms(result, tmp)
        summary = dict(result.summary, plots=plots)
        if config is not None:
            summary["config"] = config
        atomic_write_json(tmp / SUMMARY_FILE, summary)
    return out
