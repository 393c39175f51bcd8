"""``write_report``: the cross-round report (report.md + PNG plots + the history as metrics.json).

The table answers the round's question at a glance: one row per round, one column per headline
metric, each cell with its change against the previous round. Shares are shown in percent and
their changes in percentage points (pp), so "VR 4.0% (+1.5 pp)" needs no further legend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from herd.core.artifacts import atomic_write_json, atomic_write_text
from herd.eval import plots
from herd.eval.run import read_samples

#: (metrics key, column title, kind, better) — kind 'pct' (share), 'num' or 'tokens';
#: better: +1 higher is better, -1 lower is better, 0 neither (drives the ▲/▼ marks' meaning).
COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    ("reward_mean", "reward mean", "num", +1),
    ("reward_p50", "reward median", "num", +1),
    ("win_rate", "win rate", "pct", +1),
    ("tie_rate", "tie rate", "pct", 0),
    ("verifier_accuracy", "accuracy (greedy)", "pct", +1),
    ("verifier_pass_at_max", "pass@k", "pct", +1),
    ("violation_rate", "VR", "pct", -1),
    ("false_refusal_rate", "FRR", "pct", -1),
    ("length_mean", "length mean (tokens)", "tokens", 0),
    ("length_truncated_rate", "truncated", "pct", -1),
)

PLOT_FILES = {
    "reward": "reward_distribution.png",
    "rates": "metrics_per_round.png",
    "length": "length_histogram.png",
}


def _value(m: Mapping, key: str):
    return plots._value(m, key)


def _fmt(v: float | None, kind: str) -> str:
    if v is None:
        return "—"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "tokens":
        return f"{v:.1f}"
    return f"{v:.3f}"


def _delta(v: float | None, prev: float | None, kind: str, better: int) -> str:
    if v is None or prev is None:
        return ""
    d = v - prev
    if kind == "pct":
        text = f"{100 * d:+.1f} pp"
    elif kind == "tokens":
        text = f"{d:+.1f}"
    else:
        text = f"{d:+.3f}"
    mark = "" if better == 0 or abs(d) < 1e-12 else (" ✓" if d * better > 0 else " ✗")
    return f" ({text}{mark})"


def metrics_table(history: Sequence[Mapping]) -> str:
    """Markdown table: rows = rounds, columns = headline metrics present in some round."""
    cols = [c for c in COLUMNS if any(_value(m, c[0]) is not None for m in history)]
    ks = sorted({pk[0] for m in history if (pk := plots._pass_at_max(m))})
    pass_title = f"pass@{ks[0]}" if len(ks) == 1 else "pass@k (largest k)"
    titles = [pass_title if key == "verifier_pass_at_max" else t for key, t, _, _ in cols]
    lines = ["| round | " + " | ".join(titles) + " | gates |", "|---" * (len(cols) + 2) + "|"]
    for i, m in enumerate(history):
        prev = history[i - 1] if i else None
        cells = []
        for key, _, kind, better in cols:
            v = _value(m, key)
            cells.append(_fmt(v, kind) + (_delta(v, _value(prev, key), kind, better) if prev else ""))
        gates = "—" if "gates_passed" not in m else ("pass" if m["gates_passed"] else "**FAIL**")
        lines.append(f"| {plots.round_label(m, i).split()[1]} | " + " | ".join(cells) + f" | {gates} |")
    return "\n".join(lines)


def _category_table(history: Sequence[Mapping], prefix: str) -> str | None:
    """Per-category rates (e.g. VR by XSTest type) of every round, one row per category."""
    cats = sorted({k.split("/", 1)[1] for m in history for k in m if k.startswith(prefix + "/")})
    if not cats:
        return None
    head = "| category | " + " | ".join(plots.round_label(m, i) for i, m in enumerate(history)) + " |"
    lines = [head, "|---" * (len(history) + 1) + "|"]
    for c in cats:
        cells = []
        for i, m in enumerate(history):
            v = m.get(f"{prefix}/{c}")
            n = m.get(f"{prefix}_n/{c}")
            cells.append("—" if v is None else f"{100 * v:.1f}% (n={n})")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _win_rate_lines(history: Sequence[Mapping]) -> list[str]:
    out = []
    for i, m in enumerate(history):
        if m.get("win_rate") is None:
            continue
        out.append(
            f"- {plots.round_label(m, i)} vs `{m.get('baseline')}`: win {100 * m['win_rate']:.1f}% "
            f"[{100 * m['win_rate_ci_low']:.1f}%, {100 * m['win_rate_ci_high']:.1f}%], "
            f"tie {100 * m['tie_rate']:.1f}%, loss {100 * m['loss_rate']:.1f}% (n={m['win_rate_n']})"
        )
    return out


def _per_sample(history: Sequence[Mapping], field: str) -> list[list[float]]:
    """``field`` of each round's policy responses on the general prompts (from samples.jsonl)."""
    out = []
    for m in history:
        rows = read_samples(m)
        out.append([r[field] for r in rows if r.get("set") == "general" and r.get("model") == "policy"
                    and r.get(field) is not None])
    return out


def write_plots(history: Sequence[Mapping], out_dir: Path) -> dict[str, Path]:
    """Draw and save the figures that have data; returns {plot name: PNG path}."""
    written: dict[str, Path] = {}
    rewards, lengths = _per_sample(history, "reward"), _per_sample(history, "n_tokens")
    if any(rewards):
        written["reward"] = plots.save_png(plots.reward_figure(history, rewards), out_dir / PLOT_FILES["reward"])
    written["rates"] = plots.save_png(plots.rates_figure(history), out_dir / PLOT_FILES["rates"])
    if any(lengths):
        written["length"] = plots.save_png(plots.length_figure(history, lengths), out_dir / PLOT_FILES["length"])
    return written


def render_markdown(history: Sequence[Mapping], written: Mapping[str, Path]) -> str:
    """The report's text (plots referenced by relative file name)."""
    md = ["# herd evaluation report", "",
          f"{len(history)} round(s). Shares in percent; changes against the previous round in "
          "percentage points (pp) or raw units; ✓ = moved in the better direction, ✗ = worse.", "",
          "## Metrics per round", "", metrics_table(history), "",
          "Columns: reward = fixed reward model's score of greedy responses to held-out prompts "
          "(logit units); win rate = share of prompts where the reward model prefers this round's "
          "response to the previous round's (ties apart); accuracy = verifier exact match, greedy; "
          "pass@k = unbiased estimator (Chen et al. 2021) from sampled responses; VR = share of "
          "responses to unsafe prompts the guard flags; FRR = share of safe prompts refused; "
          "length = tokens per response.", ""]
    wr = _win_rate_lines(history)
    if wr:
        md += ["## Win rate vs previous round (95% Wilson interval)", "", *wr, ""]
    for prefix, title in (("violation_rate", "Violation rate by prompt category"),
                          ("false_refusal_rate", "False refusal rate by prompt category")):
        table = _category_table(history, prefix)
        if table:
            md += [f"## {title}", "", table, ""]
    failures = [(i, m) for i, m in enumerate(history) if m.get("gate_failures")]
    if failures:
        md += ["## Regression gate failures", ""]
        md += [f"- {plots.round_label(m, i)}: {f}" for i, m in failures for f in m["gate_failures"]]
        md.append("")
    captions = {"reward": "Reward distribution per round", "rates": "Accuracy, win rate, VR and FRR per round",
                "length": "Response length histogram per round"}
    md += ["## Plots", ""]
    md += [f"![{captions[k]}]({p.name})\n\n*{captions[k]}.*\n" for k, p in written.items()]
    md += ["## Models", ""]
    md += [f"- {plots.round_label(m, i)}: `{m.get('model')}`" for i, m in enumerate(history)]
    return "\n".join(md) + "\n"


def write_report(history: list[dict], out_dir: str | Path) -> Path:
    """Write report.md, the PNG plots and the history (metrics.json, a list) into ``out_dir``.

    ``history`` holds one run_eval metrics dict per round, oldest first; per-sample plots read
    each round's samples.jsonl through its ``samples_file`` entry. Returns report.md's path.
    """
    if not history:
        raise ValueError("write_report: history is empty (no evaluated round)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = write_plots(history, out)
    atomic_write_json(out / "metrics.json", list(history))
    return atomic_write_text(out / "report.md", render_markdown(history, written))
