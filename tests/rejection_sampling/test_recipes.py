"""Every shipped sampling recipe parses strictly, and the tiny one runs through ``herd sample``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herd.core.config import load_config
from herd.loop.cli import main as herd_main
from herd.rejection_sampling import SampleConfig
from tests.rejection_sampling.conftest import read_jsonl

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes" / "sampling").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_recipe_parses(recipe):
    cfg = load_config(SampleConfig, recipe)
    assert cfg.prompt_sets and cfg.sampling.k >= 1
    names = set(cfg.scorers)
    assert set(cfg.selection.rank_by or {}) <= names and set(cfg.selection.require) <= names
    for ps in cfg.prompt_sets:
        assert Path(ps.path).exists(), ps.path  # shipped data, relative to the repo root
        assert set(ps.scorers or []) <= names


def test_tiny_recipe_runs_through_the_cli(tiny_kit, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    overrides = [
        f"model={tiny_kit['policy']}",
        f"scorers.reward.model={tiny_kit['reward']}",
        f"output_dir={tmp_path / 'out'}",
        "prompt_sets=[{path: data/gsm8k/test.jsonl, format: gsm8k, name: math, limit: 2},"
        " {path: data/hh-rlhf-harmless/test.jsonl.gz, format: hh-rlhf, name: harmless, limit: 2, scorers: [reward]}]",
        "sampling.k=2", "sampling.max_new_tokens=8", "backend=hf",
    ]
    assert herd_main(["sample", "--config", "recipes/sampling/tiny.yaml", *overrides]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["prompts"] == 4 and summary["samples"] == 8
    rows = read_jsonl(tmp_path / "out" / "samples.jsonl")
    assert {r["prompt_set"] for r in rows} == {"math", "harmless"}
    assert all(set(r["scores"]) == ({"reward", "verifier"} if r["prompt_set"] == "math" else {"reward"}) for r in rows)
    assert all(r["verdict"] is not None and r["prompt_verdict"] is not None for r in rows)  # the shipped guard ran
    harmless = next(r for r in rows if r["prompt_set"] == "harmless")
    assert harmless["prompt_id"] == "harmless-test-1"


def test_cli_reports_config_errors_with_the_key(monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert herd_main(["sample", "--config", "recipes/sampling/tiny.yaml", "sampling.kk=3"]) == 2
    assert "sampling.kk: unknown key" in capsys.readouterr().err
