"""The round runner's curate step uses the curation config it is given: ``quality.reward_model:
round`` scores with the round's reward model (the top fraction by that model's scores is what
SFT gets), the model's hash is a stage input, and embeddings are cached under the workdir."""

from __future__ import annotations

import json

import pytest

from herd.core.artifacts import content_hash
from herd.core.reward_scoring import RewardModelScorer
from herd.loop.config import load_round_config
from herd.loop.runner import RoundRunner
from tests.conftest import REPO
from tests.curation.helpers import hh_rows

RECIPE = REPO / "tests" / "loop" / "recipes" / "tiny_loop.yaml"
CURATE = "sft.curate={quality: {reward_model: round, rm_top_fraction: 0.5}, rules: {apology: {enabled: false}}}"


def _runner(tmp_path, *overrides: str) -> RoundRunner:
    cfg = load_round_config(RECIPE, [CURATE, *overrides])
    return RoundRunner(cfg, tmp_path / "work", config_source=str(RECIPE))


def test_round_reward_model_selects_the_top_fraction(tiny_kit, tmp_path):
    rows = [{"messages": r["messages"]} for r in hh_rows(12)]
    data = tmp_path / "sft_data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    runner = _runner(tmp_path)
    rdir = runner.workdir / "round_1"

    out = runner._curate(1, rdir, data, tiny_kit["reward"])

    scores = RewardModelScorer(str(tiny_kit["reward"])).score([r["messages"] for r in rows])
    top = sorted(range(12), key=lambda i: -scores[i])[:6]
    kept = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["messages"][0]["content"] for r in kept) == sorted(rows[i]["messages"][0]["content"] for i in top)
    by_prompt = {r["messages"][0]["content"]: s for r, s in zip(rows, scores)}
    for r in kept:
        assert r["rm_score"] == pytest.approx(by_prompt[r["messages"][0]["content"]], abs=1e-4)

    manifest = json.loads((runner.workdir / "manifests" / "round1.curate.json").read_text())
    assert manifest["inputs"]["reward_model"] == content_hash(tiny_kit["reward"])
    assert list((runner.workdir / "cache" / "curate-embeddings").glob("emb-*.npy"))

    # Same data, same reward model: up to date, nothing re-run.
    before = out.stat().st_mtime_ns
    assert _runner(tmp_path)._curate(1, rdir, data, tiny_kit["reward"]) == out
    assert out.stat().st_mtime_ns == before


def test_round_reward_model_without_one_is_a_config_error(tmp_path):
    data = tmp_path / "sft_data.jsonl"
    data.write_text(json.dumps({"messages": hh_rows(1)[0]["messages"]}) + "\n", encoding="utf-8")
    runner = _runner(tmp_path)
    with pytest.raises(ValueError, match=r"tiny_loop\.yaml: sft\.curate\.quality\.reward_model: 'round' needs a reward model"):
        runner._curate(1, runner.workdir / "round_1", data, None)
