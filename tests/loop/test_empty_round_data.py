"""A round whose sampling leaves nothing to train on (every prompt's samples agreed, so no DPO
pairs; no verified-correct sample, so no SFT rows) skips that training stage and goes on with the
model it has, and says so in the run's summary, instead of failing the whole run."""

from __future__ import annotations

import json
from pathlib import Path

from herd.loop.config import load_round_config
from herd.loop.runner import RoundRunner
from herd.loop.summary import write_summary
from tests.conftest import REPO

RECIPE = REPO / "tests" / "loop" / "recipes" / "tiny_loop.yaml"


def test_empty_pairs_and_sft_rows_skip_their_stages(tmp_path):
    runner = RoundRunner(load_round_config(RECIPE), tmp_path / "work", config_source=str(RECIPE))
    rdir = runner.workdir / "round_1"
    (rdir / "sample").mkdir(parents=True)
    (rdir / "sample" / "pairs.jsonl").write_text("", encoding="utf-8")
    (rdir / "sample" / "sft.jsonl").write_text("\n", encoding="utf-8")  # blank lines are no rows
    sft_model, prev = tmp_path / "sft_model", tmp_path / "prev_policy"

    assert runner._dpo(1, rdir, sft_model, prev) == (sft_model, 0)
    assert runner._sft(1, rdir, tmp_path / "base", prev, None) == (prev, 0)
    assert [(s["round"], s["stage"]) for s in runner.skipped] == [(1, "dpo"), (1, "sft")]
    assert not (rdir / "dpo").exists() and not (rdir / "sft").exists()
    assert not list(runner.workdir.glob("manifests/round1.*"))

    report = tmp_path / "report"
    report.mkdir()
    write_summary(report, [{"round": 0, "verifier_accuracy": 0.5}, {"round": 1, "verifier_accuracy": 0.5}], None, runner.skipped)
    text = (report / "summary.md").read_text(encoding="utf-8")
    assert "Round 1: dpo skipped — " in text and "no preference pairs" in text
    assert json.loads((report / "summary.json").read_text())["skipped"] == runner.skipped


def test_a_data_file_not_written_yet_is_not_a_skip(tmp_path):
    """Planning (herd status, dry run) before sampling ran must show DPO as pending, not skipped."""
    runner = RoundRunner(load_round_config(RECIPE), tmp_path / "work", config_source=str(RECIPE), dry_run=True)
    rdir = runner.workdir / "round_1"
    path, _ = runner._dpo(1, rdir, Path("sft_model"), Path("prev"))
    assert path == rdir / "dpo" and runner.skipped == []
