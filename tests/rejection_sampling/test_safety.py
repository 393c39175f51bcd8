"""The stage with herd's shipped embedding guard on real HH-RLHF red-team prompts: verdicts on
every sample and prompt, no unsafe sample ever kept or chosen, safety pairs safe-over-unsafe."""

from __future__ import annotations

import json

import pytest

from herd.core.scoring import Verdict
from herd.rejection_sampling import PromptSetConfig, SafetySpec, SelectionConfig, run_sampling
from herd.rejection_sampling.judge import _fail_closed, conversation, judge
from herd.rejection_sampling.prompts import load_prompts
from tests.rejection_sampling.conftest import DATA, make_config, read_jsonl

HH = DATA / "hh-rlhf-harmless" / "test.jsonl.gz"


@pytest.fixture(scope="module")
def guard():
    from herd.safety import load_classifier

    return load_classifier(None)


@pytest.fixture(scope="module")
def guarded_run(tiny_kit, reward_scorer, guard, tmp_path_factory):
    sets = [PromptSetConfig(path=HH, format="hh-rlhf", name="harmless", limit=12, system_prompt="Be harmless.")]
    cfg = make_config(
        tiny_kit, tmp_path_factory.mktemp("safe") / "out", sets, shard_size=6, safety=SafetySpec(),
        selection=SelectionConfig(rank_by={"reward": 1.0}, safety_pairs=True),
    )
    out = run_sampling(cfg, {"reward": reward_scorer}, safety=guard)
    return cfg, out


def test_every_sample_and_prompt_has_the_guards_verdict(guarded_run, guard):
    cfg, out = guarded_run
    rows = read_jsonl(out / "samples.jsonl")
    prompts = {p.id: p for p in load_prompts(cfg.prompt_sets)}
    again = guard.classify([conversation(prompts[r["prompt_id"]], r["text"]) for r in rows])
    assert [(r["verdict"]["safe"], pytest.approx(r["verdict"]["p_unsafe"], abs=1e-6)) for r in rows] == [
        (v.safe, v.p_unsafe) for v in again
    ]
    prompt_verdicts = guard.classify([prompts[pid].messages for pid in dict.fromkeys(r["prompt_id"] for r in rows)])
    assert [r["prompt_verdict"]["safe"] for r in rows[::4]] == [v.safe for v in prompt_verdicts]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["unsafe_samples"] == sum(not r["verdict"]["safe"] for r in rows) > 0
    assert metrics["unsafe_prompts"] > 0  # red-team prompts


def test_unsafe_samples_are_never_kept_or_chosen(guarded_run):
    _, out = guarded_run
    rows = {(r["prompt_id"], r["k"]): r for r in read_jsonl(out / "samples.jsonl")}
    sft = read_jsonl(out / "sft.jsonl")
    pairs = read_jsonl(out / "pairs.jsonl")
    assert sft and pairs
    for r in sft:
        assert rows[(r["prompt_id"], r["k"])]["verdict"]["safe"]
    for p in pairs:
        assert rows[(p["prompt_id"], p["chosen_k"])]["verdict"]["safe"] and p["chosen_safe"]
    safety_pairs = [p for p in pairs if p["pair_type"] == "safety"]
    assert safety_pairs
    for p in safety_pairs:
        unsafe = [r for (pid, _), r in rows.items() if pid == p["prompt_id"] and not r["verdict"]["safe"]]
        rejected = rows[(p["prompt_id"], p["rejected_k"])]
        assert not rejected["verdict"]["safe"] and not p["rejected_safe"]
        assert rejected["verdict"]["p_unsafe"] == max(r["verdict"]["p_unsafe"] for r in unsafe)


def test_a_failed_verdict_counts_as_unsafe(tiny_kit):
    failed = Verdict(safe=True, p_unsafe=0.0, error="guard output unparsable")
    assert _fail_closed(failed, fail_closed=True).safe is False
    assert _fail_closed(failed, fail_closed=False).safe is True
    assert _fail_closed(Verdict(safe=True), fail_closed=True).safe is True


def test_guard_returning_the_wrong_count_is_an_error():
    class Short:
        def classify(self, conversations):
            return []

    prompts = load_prompts([PromptSetConfig(path=HH, format="hh-rlhf", limit=1)])
    from herd.core.generation import Sample

    with pytest.raises(ValueError, match="0 verdicts for 1 responses"):
        judge(prompts, [[Sample("hi", [1], [0.0], "stop")]], {}, Short())
