"""The whole stage on the HF backend: what lands on disk, and that it follows the rules.

Real parts throughout: the tiny Llama policy sampling real XSTest and GSM8K prompts, the tiny
reward model through RewardModelScorer, the GSM8K verifier from herd.core.verifiers.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from herd.core.artifacts import content_hash, hash_path, read_manifest
from herd.core.models import load_tokenizer
from herd.core.verifiers import NumberMatchVerifier
from herd.rejection_sampling import PromptSetConfig, SelectionConfig, run_sampling
from herd.rejection_sampling import stage as stage_module
from tests.rejection_sampling.conftest import GSM8K, VARYING_STOPS, make_config, read_jsonl

SYSTEM = "You are a helpful assistant. Answer briefly."


def _sets(xstest_file):
    return [
        PromptSetConfig(path=xstest_file, name="chat", system_prompt=SYSTEM, scorers=["reward"]),
        PromptSetConfig(path=GSM8K, name="math", format="gsm8k", limit=4),
    ]


@pytest.fixture(scope="module")
def gated_run(tiny_kit, xstest_file, reward_scorer, tmp_path_factory):
    """Reward ranks; on math prompts only verified-correct samples may be kept or chosen."""
    cfg = make_config(
        tiny_kit, tmp_path_factory.mktemp("rs") / "out", _sets(xstest_file),
        selection=SelectionConfig(rank_by={"reward": 1.0}, require={"verifier": 1.0}, pair_margin=0.01),
    )
    scorers = {"reward": reward_scorer, "verifier": NumberMatchVerifier()}
    out = run_sampling(cfg, scorers)
    return cfg, scorers, out


def _by_prompt(rows):
    out = {}
    for r in rows:
        out.setdefault(r["prompt_id"], []).append(r)
    return out


def test_every_prompt_gets_k_samples_with_tokens_logprobs_and_provenance(gated_run, tiny_kit):
    cfg, _, out = gated_run
    tok = load_tokenizer(str(tiny_kit["policy"]))
    stop_ids = set(tok.convert_tokens_to_ids(VARYING_STOPS))
    samples = read_jsonl(out / "samples.jsonl")
    by_prompt = _by_prompt(samples)
    assert len(by_prompt) == 10 + 4 and len(samples) == 14 * 4
    policy_hash = content_hash(tiny_kit["policy"])  # weights, not logs
    finish = set()
    for pid, rows in by_prompt.items():
        assert [r["k"] for r in rows] == [0, 1, 2, 3]
        for r in rows:
            assert len(r["token_ids"]) == len(r["logprobs"]) > 0
            assert all(lp <= 0 for lp in r["logprobs"])
            if r["finish_reason"] == "stop":
                assert r["token_ids"][-1] in stop_ids and not stop_ids & set(r["token_ids"][:-1])
                assert r["text"] == tok.decode(r["token_ids"][:-1], skip_special_tokens=True)
            else:
                assert len(r["token_ids"]) == cfg.sampling.max_new_tokens and not stop_ids & set(r["token_ids"])
            finish.add(r["finish_reason"])
            assert (r["sampler_model"], r["sampler_hash"], r["round"]) == (cfg.model, policy_hash, 0)
            assert r["sampling"] == {"k": 4, "max_new_tokens": 24, "temperature": 1.0, "top_p": 1.0,
                                     "seed": 3, "stop_tokens": VARYING_STOPS}
            # Per-set scorers: the verifier runs only where rows carry a reference.
            assert set(r["scores"]) == ({"reward"} if r["prompt_set"] == "chat" else {"reward", "verifier"})
    assert finish == {"stop", "length"}  # varying lengths, some truncated
    assert {len(r["token_ids"]) for r in samples} != {24}


def test_recorded_rewards_are_the_reward_models_scores(gated_run, reward_scorer):
    _, _, out = gated_run
    prompts = {r["prompt_id"]: r for r in read_jsonl(out / "sft.jsonl")}
    rows = [r for r in read_jsonl(out / "samples.jsonl") if r["prompt_id"] in prompts][:6]
    convs = [prompts[r["prompt_id"]]["messages"][:-1] + [{"role": "assistant", "content": r["text"]}] for r in rows]
    # One conversation at a time (no batching, no padding) vs the stage's length-sorted batches.
    alone = [reward_scorer.score([c])[0] for c in convs]
    assert len(rows) == 6
    torch.testing.assert_close(torch.tensor([r["scores"]["reward"] for r in rows]), torch.tensor(alone), atol=1e-5, rtol=0)


def test_sft_keeps_the_best_eligible_sample_and_pairs_follow_the_rules(gated_run):
    cfg, _, out = gated_run
    by_prompt = _by_prompt(read_jsonl(out / "samples.jsonl"))
    sft = {r["prompt_id"]: r for r in read_jsonl(out / "sft.jsonl")}
    pairs = read_jsonl(out / "pairs.jsonl")
    for pid, rows in by_prompt.items():
        eligible = [r for r in rows if r["finish_reason"] == "stop" and r["text"].strip() and r["scores"].get("verifier", 1.0) >= 1.0]
        assert [r["eligible"] for r in rows] == [r in eligible for r in rows]
        if not eligible:
            assert pid not in sft
            continue
        best = max(eligible, key=lambda r: (r["scores"]["reward"], -r["k"]))
        assert sft[pid]["k"] == best["k"]
        assert sft[pid]["messages"][0] == {"role": "system", "content": SYSTEM}
        assert sft[pid]["messages"][-1] == {"role": "assistant", "content": best["text"]}
        assert sft[pid]["scores"] == best["scores"] and sft[pid]["sampler_hash"] == best["sampler_hash"]
    # The random policy never gets a GSM8K answer right, so no math prompt is kept or chosen.
    assert not any(pid.startswith("gsm8k-") for pid in sft)
    assert sft and pairs
    assert all(p["prompt_set"] == "chat" for p in pairs)
    for p in pairs:
        rows = {r["k"]: r for r in by_prompt[p["prompt_id"]]}
        chosen, rejected = rows[p["chosen_k"]], rows[p["rejected_k"]]
        assert chosen["eligible"] and chosen["k"] == sft[p["prompt_id"]]["k"]
        assert rejected["scores"]["reward"] == min(r["scores"]["reward"] for r in rows.values())
        assert p["score_gap"] == pytest.approx(chosen["scores"]["reward"] - rejected["scores"]["reward"])
        assert p["score_gap"] >= cfg.selection.pair_margin
        assert p["chosen"] == [{"role": "assistant", "content": chosen["text"]}]
        assert (p["chosen_token_ids"], p["rejected_logprobs"]) == (chosen["token_ids"], rejected["logprobs"])
        assert p["prompt"][-1]["role"] == "user" and p["pair_type"] == "best_worst"


def test_metrics_and_manifest_describe_the_outputs(gated_run):
    _, _, out = gated_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["prompts"] == 14 and metrics["samples"] == 56
    assert metrics["sft_kept"] == len(read_jsonl(out / "sft.jsonl"))
    assert metrics["pairs"] == len(read_jsonl(out / "pairs.jsonl"))
    assert metrics["generated_tokens"] == sum(len(r["token_ids"]) for r in read_jsonl(out / "samples.jsonl"))
    assert sum(metrics["sft_reasons"].values()) == 14
    assert metrics["mean_scores"]["verifier"] == 0.0
    manifest = read_manifest(out)
    assert manifest.stage == "rejection_sampling" and manifest.output_hash == hash_path(out)
    assert not (out / ".work").exists()


def test_finished_run_is_skipped_and_a_changed_rule_reselects(gated_run, monkeypatch):
    cfg, scorers, out = gated_run
    before = {name: (out / f"{name}.jsonl").read_bytes() for name in ("samples", "sft", "pairs")}

    def no_engine(_cfg):
        raise AssertionError("a finished stage must not start the engine")

    monkeypatch.setattr(stage_module, "_start_backend", no_engine)
    assert run_sampling(cfg, scorers) == out
    assert {n: (out / f"{n}.jsonl").read_bytes() for n in before} == before
    monkeypatch.undo()

    threshold = sorted(r["rank_score"] for r in read_jsonl(out / "sft.jsonl"))[1]
    stricter = dataclasses.replace(cfg, selection=dataclasses.replace(cfg.selection, min_score=threshold))
    run_sampling(stricter, scorers)
    assert (out / "samples.jsonl").read_bytes() == before["samples"]  # same seeds, same samples
    kept = read_jsonl(out / "sft.jsonl")
    assert kept and all(r["rank_score"] >= threshold for r in kept)
    assert len(kept) == len(before["sft"].splitlines()) - 1  # exactly the lowest-scoring one dropped
