"""report.md and the plots for a two-round history: content, changes, and the series drawn."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from herd.eval import plots, write_report
from herd.eval.report import PLOT_FILES, metrics_table


def _round(tmp_path, r: int, rewards, lengths, **metrics) -> dict:
    d = tmp_path / f"round_{r}"
    d.mkdir()
    rows = [
        {"set": "general", "model": "policy", "id": f"p{i}", "k": 0, "reward": x, "n_tokens": n, "finish_reason": "stop"}
        for i, (x, n) in enumerate(zip(rewards, lengths))
    ]
    rows.append({"set": "general", "model": "baseline", "id": "p0", "k": 0, "reward": 99.0, "n_tokens": 999})
    (d / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {"round": r, "model": f"/runs/r{r}/policy", "samples_file": str(d / "samples.jsonl"), **metrics}


@pytest.fixture()
def history(tmp_path):
    r0 = _round(
        tmp_path, 0, [0.1, 0.5, -0.2, 0.3], [12, 20, 15, 30],
        reward_mean=0.175, reward_p50=0.2, verifier_accuracy=0.40, verifier_pass_at_1=0.38, verifier_pass_at_4=0.70,
        violation_rate=0.10, false_refusal_rate=0.20, length_mean=19.25, length_truncated_rate=0.0,
        **{"violation_rate/contrast_homonyms": 0.25, "violation_rate_n/contrast_homonyms": 4},
        win_rate=None, gates_passed=True, gate_failures=[],
    )
    r1 = _round(
        tmp_path, 1, [0.6, 0.9, 0.4, 1.1], [14, 22, 40, 41],
        reward_mean=0.75, reward_p50=0.75, verifier_accuracy=0.65, verifier_pass_at_1=0.60, verifier_pass_at_4=0.85,
        violation_rate=0.125, false_refusal_rate=0.15, length_mean=29.25, length_truncated_rate=0.25,
        **{"violation_rate/contrast_homonyms": 0.5, "violation_rate_n/contrast_homonyms": 4},
        win_rate=0.75, loss_rate=0.25, tie_rate=0.0, win_rate_ci_low=0.3006, win_rate_ci_high=0.9544, win_rate_n=4,
        baseline="/runs/r0/policy", gates_passed=False,
        gate_failures=["violation_rate rose by 0.025 (0.1 -> 0.125), more than the allowed 0.02"],
    )
    return [r0, r1]


def test_figures_have_one_series_per_round_or_metric(history):
    rewards = [[0.1, 0.5, -0.2, 0.3], [0.6, 0.9, 0.4, 1.1]]
    fig = plots.reward_figure(history, rewards)
    ax = fig.axes[0]
    assert len(ax.patches) == 2  # one step histogram per round
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "round 0 (mean 0.175, n=4)", "round 1 (mean 0.75, n=4)"
    ]
    assert ax.get_xlabel().startswith("reward model score") and ax.get_ylabel() == "share of responses (%)"
    # each histogram's bars sum to 100 % of that round's responses
    for patch in ax.patches:
        ys = patch.get_xy()[:, 1]
        assert ys.max() > 0

    fig = plots.rates_figure(history)
    cap, safety = fig.axes
    assert [ln.get_label() for ln in cap.get_lines()] == [
        "verifier accuracy (greedy)", "verifier pass@4", "win rate vs previous round"
    ]
    assert [ln.get_label() for ln in safety.get_lines()] == [
        "violation rate (VR, unsafe prompts)", "false refusal rate (FRR, safe prompts)"
    ]
    vr = safety.get_lines()[0].get_ydata()
    np.testing.assert_allclose(vr, [10.0, 12.5])  # shares drawn in percent
    win = cap.get_lines()[2].get_ydata()
    assert np.isnan(win[0]) and win[1] == 75.0  # round 0 had no baseline
    assert len(cap.collections) == 1  # the win rate's confidence band
    assert cap.get_ylabel() == "percent (%)"

    fig = plots.length_figure(history, [[12, 20, 15, 30], [14, 22, 40, 41]])
    assert len(fig.axes[0].patches) == 2
    assert "tokens" in fig.axes[0].get_xlabel()
    plots.plt.close("all")


def test_write_report_two_rounds(history, tmp_path):
    out = tmp_path / "report"
    path = write_report(history, out)
    text = path.read_text()
    assert path == out / "report.md"
    # table: header + separator + one row per round; changes vs the previous round
    table = metrics_table(history).splitlines()
    assert len(table) == 4
    assert table[0] == (
        "| round | reward mean | reward median | win rate | tie rate | accuracy (greedy) | pass@4 | VR | FRR "
        "| length mean (tokens) | truncated | gates |"
    )
    assert table[2].startswith("| 0 | 0.175 | 0.200 | — | — | 40.0% | 70.0% | 10.0% | 20.0% | 19.2 | 0.0% | pass |")
    row1 = table[3]
    assert "0.750 (+0.575 ✓)" in row1 and "65.0% (+25.0 pp ✓)" in row1
    assert "12.5% (+2.5 pp ✗)" in row1  # VR rose: worse
    assert "15.0% (-5.0 pp ✓)" in row1  # FRR fell: better
    assert "29.2 (+10.0)" in row1 and row1.endswith("| **FAIL** |")
    assert "win 75.0% [30.1%, 95.4%], tie 0.0%, loss 25.0% (n=4)" in text
    assert "| contrast_homonyms | 25.0% (n=4) | 50.0% (n=4) |" in text
    assert "- round 1: violation_rate rose by 0.025" in text
    for name in PLOT_FILES.values():
        png = out / name
        assert f"]({name})" in text
        img = mpimg.imread(png)
        assert img.shape[0] > 300 and img.shape[1] > 600  # a real figure, not a stub
        assert (img[..., :3] < 0.5).mean() > 0.005  # with something drawn on it
    assert json.loads((out / "metrics.json").read_text()) == history
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_report_without_samples_skips_distribution_plots(history, tmp_path):
    for m in history:
        m["samples_file"] = str(tmp_path / "gone.jsonl")
    out = tmp_path / "r"
    text = write_report(history, out).read_text()
    assert (out / PLOT_FILES["rates"]).exists()
    assert not (out / PLOT_FILES["reward"]).exists() and PLOT_FILES["reward"] not in text
    with pytest.raises(ValueError, match="history is empty"):
        write_report([], out)
