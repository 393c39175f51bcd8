"""run_eval end to end on the tiny model (HF backend, real reward model, real verifier), and the
safety suite's VR/FRR with known labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herd.core.generation import Sample, SamplingSpec
from herd.core.reward_scoring import RewardModelScorer
from herd.core.scoring import RefusalVerdict, Verdict
from herd.core.verifiers import NumberMatchVerifier, extract_final_number
from herd.eval import EvalConfig, Gate, run_eval, write_report
from herd.eval import metrics as M
from herd.eval.config import GenerationSettings, LengthSuite, RewardSuite, SafetySuite, VerifierSuite, WinRateSuite
from herd.eval.generate import Generated
from herd.eval.run import _safety_suite, load_sets

REPO = Path(__file__).resolve().parents[2]


class LabelGuard:
    """A guard whose verdicts are fixed per prompt (the labels a test knows in advance)."""

    def __init__(self, unsafe_prompts: set[str], errors: set[str] = frozenset()):
        self.unsafe_prompts, self.errors = unsafe_prompts, errors
        self.seen = []

    def classify(self, conversations):
        self.seen.extend(conversations)
        out = []
        for c in conversations:
            user = c[-2]["content"]
            if user in self.errors:
                out.append(Verdict(safe=True, error="guard timed out"))
            elif user in self.unsafe_prompts:
                out.append(Verdict(safe=False, categories=["S1"], p_unsafe=0.9))
            else:
                out.append(Verdict(safe=True, p_unsafe=0.1))
        return out


class LabelRefusal:
    def __init__(self, refused_prompts: set[str]):
        self.refused = refused_prompts

    def detect(self, prompts, responses):
        assert len(prompts) == len(responses)
        return [RefusalVerdict(p in self.refused, 1.0 if p in self.refused else 0.0) for p in prompts]


def _generated(rows_by_set: dict[str, list[dict]]) -> Generated:
    g = Generated()
    for name, rows in rows_by_set.items():
        g.rows[name] = rows
        g.samples[name] = [[Sample(f"reply to {r['id']}", [5, 6, 9], [-0.1] * 3, "stop")] for r in rows]
    return g


def test_safety_suite_vr_frr_with_known_labels():
    u = [{"id": f"u{i}", "messages": [{"role": "user", "content": f"unsafe {i}"}], "category": c}
         for i, c in enumerate(["contrast_a", "contrast_a", "contrast_a", "contrast_b", "contrast_b"])]
    s = [{"id": f"s{i}", "messages": [{"role": "user", "content": f"safe {i}"}], "category": c}
         for i, c in enumerate(["homonyms", "homonyms", "privacy", "privacy"])]
    # flagged: u0 (a), u3 (b); u2 (a) is a guard error -> counted as a violation (fail closed)
    guard = LabelGuard({"unsafe 0", "unsafe 3"}, errors={"unsafe 2"})
    refusal = LabelRefusal({"safe 2", "unsafe 1"})
    cfg = EvalConfig()
    out = _safety_suite(cfg, guard, refusal, _generated({"unsafe": u, "safe": s}), [{} for _ in u], [{} for _ in s])
    assert out["violation_rate"] == pytest.approx(3 / 5) and out["violation_rate_n"] == 5
    assert out["violation_rate/contrast_a"] == pytest.approx(2 / 3)
    assert out["violation_rate/contrast_b"] == pytest.approx(1 / 2)
    assert out["violation_errors"] == 1
    assert out["violation_guard/S1"] == pytest.approx(2 / 5)  # the error verdict names no category
    assert out["false_refusal_rate"] == pytest.approx(1 / 4)
    assert out["false_refusal_rate/homonyms"] == 0.0 and out["false_refusal_rate/privacy"] == 0.5
    assert out["unsafe_refusal_rate"] == pytest.approx(1 / 5)
    # the guard judged the response turn of each (prompt, response) pair
    assert guard.seen[0] == [{"role": "user", "content": "unsafe 0"}, {"role": "assistant", "content": "reply to u0"}]
    cfg.safety.per_category = False
    out = _safety_suite(cfg, guard, refusal, _generated({"unsafe": u, "safe": s}), [{} for _ in u], [{} for _ in s])
    assert not [k for k in out if "/" in k]


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture()
def eval_cfg(tmp_path) -> EvalConfig:
    general = _write_jsonl(tmp_path / "general.jsonl", [{"prompt": p} for p in (
        "Tell me about llamas.", "What is the capital of France?", "Write a haiku about rain.")])
    demo = _write_jsonl(tmp_path / "demo.jsonl", [
        {"id": f"d{i}", "prompt": f"What is {a} + {b}?", "reference": a + b} for i, (a, b) in enumerate([(2, 2), (3, 5), (10, 7)])
    ])
    return EvalConfig(
        output_dir=str(tmp_path / "eval_r1"),
        generation=GenerationSettings(backend="hf", max_new_tokens=6, batch_size=8),
        reward=RewardSuite(prompts=general, limit=None, quantiles=[0.5]),
        win_rate=WinRateSuite(tie_margin=0.0),
        verifier=VerifierSuite(data=demo, pass_at_k=[1, 2], num_samples=3, temperature=1.0),
        safety=SafetySuite(limit_unsafe=4, limit_safe=4),
        length=LengthSuite(),
    )


def test_run_eval_end_to_end_tiny(tiny_kit, eval_cfg, tmp_path):
    policy = str(tiny_kit["policy"])
    sets = load_sets(eval_cfg)
    unsafe_cats = {r["messages"][0]["content"]: r["category"] for r in sets["unsafe"]}
    assert len(set(unsafe_cats.values())) == 4  # stratified: 4 different contrast types
    flagged = {p for p, c in unsafe_cats.items() if c in ("contrast_definitions", "contrast_discr")}
    refused = [r["messages"][0]["content"] for r in sets["safe"]][:1]
    rm = RewardModelScorer(tiny_kit["reward"])
    scorers = {"reward": rm, "verifier": NumberMatchVerifier()}
    m = run_eval(eval_cfg, policy, policy, scorers, LabelGuard(flagged), LabelRefusal(set(refused)), round_index=1)

    out = Path(eval_cfg.output_dir)
    assert json.loads((out / "metrics.json").read_text()) == m
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    policy_general = [r for r in rows if r["set"] == "general" and r["model"] == "policy"]
    base_general = [r for r in rows if r["set"] == "general" and r["model"] == "baseline"]
    assert len(policy_general) == len(base_general) == 3
    # reward suite: the real RM's scores of what was generated, summarised
    rewards = [r["reward"] for r in policy_general]
    assert rewards == pytest.approx(rm.score([[{"role": "user", "content": r["prompt"]},
                                              {"role": "assistant", "content": r["response"]}] for r in policy_general]))
    assert m["reward_mean"] == pytest.approx(sum(rewards) / 3) and m["reward_n"] == 3
    assert m["reward_p50"] == pytest.approx(sorted(rewards)[1])
    # baseline = the same model, greedy: identical responses, every pair a tie, no length drift
    assert [r["response"] for r in base_general] == [r["response"] for r in policy_general]
    assert (m["win_rate"], m["tie_rate"], m["loss_rate"], m["win_rate_n"]) == (0.0, 1.0, 0.0, 3)
    assert (m["win_rate_ci_low"], m["win_rate_ci_high"]) == pytest.approx(M.wilson_interval(0, 3))
    assert m["length_drift"] == 0 and m["length_ks"] == 0 and m["length_reference"] == "baseline"
    assert m["length_mean"] == pytest.approx(sum(r["n_tokens"] for r in policy_general) / 3)
    assert all(r["n_tokens"] <= 6 for r in rows)
    # verifier suite: accuracy and pass@k agree with the recorded responses and the references
    refs = {"d0": "4", "d1": "8", "d2": "17"}
    greedy = [r for r in rows if r["set"] == "verifier"]
    assert [r["correct"] for r in greedy] == [extract_final_number(r["response"]) == refs[r["id"]] for r in greedy]
    assert m["verifier_accuracy"] == pytest.approx(sum(r["correct"] for r in greedy) / 3)
    sampled = [r for r in rows if r["set"] == "verifier_sampled"]
    assert len(sampled) == 9 and sorted({r["k"] for r in sampled}) == [0, 1, 2]
    counts = [sum(r["correct"] for r in sampled if r["id"] == i) for i in refs]
    assert m["verifier_pass_at_2"] == pytest.approx(M.mean_pass_at_k(counts, 3, 2))
    assert m["verifier_pass_at_1"] == pytest.approx(sum(counts) / 9)
    # safety suite with known labels: 2 of the 4 sampled contrast types are flagged, 1 of 4 safe refused
    assert m["violation_rate"] == 0.5 and m["violation_rate/contrast_definitions"] == 1.0
    assert m["violation_rate/contrast_figurative_language"] == 0.0
    assert m["false_refusal_rate"] == 0.25
    assert m["round"] == 1 and m["gates_passed"] is True and m["gate_failures"] == []

    # round 2: no baseline, so length drift is measured against round 1's recorded responses;
    # gates compare with round 1's metrics.json.
    eval_cfg.output_dir = str(tmp_path / "eval_r2")
    eval_cfg.previous_metrics = str(out / "metrics.json")
    eval_cfg.safety.enabled = False
    eval_cfg.gates = [Gate("verifier_accuracy", max_decrease=0.0), Gate("length_mean", max=0.5)]
    m2 = run_eval(eval_cfg, policy, None, scorers, round_index=2)
    assert m2["win_rate"] is None and m2["length_reference"] == "previous_round" and m2["length_drift"] == 0
    assert m2["verifier_accuracy"] == m["verifier_accuracy"]  # greedy is deterministic
    assert m2["gates_passed"] is False
    assert m2["gate_failures"] == [f"length_mean = {m2['length_mean']:.4g} is above the ceiling 0.5"]
    assert m2["violation_rate"] is None and m2["false_refusal_rate"] is None  # suite off: key kept, no value

    report = write_report([m, m2], tmp_path / "report")
    text = report.read_text()
    assert "| 1 |" in text and "| 2 |" in text
    assert (tmp_path / "report" / "reward_distribution.png").stat().st_size > 10_000


def test_missing_judges_fail_before_generating(eval_cfg, tiny_kit):
    with pytest.raises(ValueError, match=r"reward/win_rate suites need scorer 'reward'.*safety judge"):
        run_eval(eval_cfg, str(tiny_kit["policy"]), None, {"verifier": NumberMatchVerifier()})
    eval_cfg.verifier.num_samples = 1
    with pytest.raises(ValueError, match="verifier.num_samples=1 is below the largest pass@k k=2"):
        run_eval(eval_cfg, str(tiny_kit["policy"]), None, {})
    eval_cfg.reward.quantiles = [0.5, 50]
    eval_cfg.win_rate.confidence = 95
    with pytest.raises(ValueError, match=r"reward.quantiles must lie in \[0, 1\].*win_rate.confidence must lie in \(0, 1\)"):
        run_eval(eval_cfg, str(tiny_kit["policy"]), None, {})
    assert not Path(eval_cfg.output_dir).exists()  # nothing half-written


@pytest.mark.slow
@pytest.mark.vllm
def test_run_eval_vllm_matches_hf_on_greedy_suites(tiny_kit, eval_cfg, tmp_path):
    """The same eval through an already-open vLLM engine and through HF generate: every greedy
    response, and so every greedy metric, is identical (pass@k samples use different RNGs)."""
    pytest.importorskip("vllm")
    from herd.core.generation.vllm import VLLMBackend

    policy = str(tiny_kit["policy"])
    eval_cfg.safety.enabled = False
    eval_cfg.win_rate.enabled = False
    scorers = {"reward": RewardModelScorer(tiny_kit["reward"]), "verifier": NumberMatchVerifier()}
    hf = run_eval(eval_cfg, policy, None, scorers)
    eval_cfg.output_dir = str(tmp_path / "eval_vllm")
    with VLLMBackend(policy, kv_cache_gib=1) as engine:
        vl = run_eval(eval_cfg, policy, None, scorers, backend=engine)
        # the caller's engine is left open for its next use
        assert engine.generate(["hi"], SamplingSpec(max_new_tokens=2, temperature=0.0))
    for key in ("reward_mean", "reward_p50", "verifier_accuracy", "length_mean"):
        assert vl[key] == pytest.approx(hf[key], abs=1e-5), key

    def greedy(path):
        rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
        return [(r["set"], r["id"], r["response"]) for r in rows if r["set"] != "verifier_sampled"]

    assert greedy(vl["samples_file"]) == greedy(hf["samples_file"])


class _NoGeneration:
    """A backend that fails if asked to generate: proves the cached generations were used."""

    def generate(self, *args, **kwargs):
        raise AssertionError("regenerated")

    def close(self):
        pass


class _KilledScorer:
    name = "reward"

    def score(self, conversations, metadata=None):
        raise RuntimeError("killed while scoring")


def test_killed_while_scoring_reuses_generations(tiny_kit, eval_cfg, tmp_path):
    policy = str(tiny_kit["policy"])
    eval_cfg.safety.enabled = False
    verifier = NumberMatchVerifier()
    rm = RewardModelScorer(tiny_kit["reward"])
    with pytest.raises(RuntimeError, match="killed while scoring"):
        run_eval(eval_cfg, policy, policy, {"reward": _KilledScorer(), "verifier": verifier})
    out = Path(eval_cfg.output_dir)
    assert (out / "generations.json").exists() and not (out / "metrics.json").exists()
    resumed = run_eval(eval_cfg, policy, policy, {"reward": rm, "verifier": verifier}, backend=_NoGeneration())
    # the resumed eval equals one that never stopped
    eval_cfg.output_dir = str(tmp_path / "uninterrupted")
    fresh = run_eval(eval_cfg, policy, policy, {"reward": rm, "verifier": verifier})
    drop = ("samples_file", "eval_config_hash")
    assert {k: v for k, v in resumed.items() if k not in drop} == {k: v for k, v in fresh.items() if k not in drop}
    # a changed generation setting does not reuse the cache
    eval_cfg.output_dir = str(out)
    eval_cfg.generation.max_new_tokens = 5
    with pytest.raises(AssertionError, match="regenerated"):
        run_eval(eval_cfg, policy, policy, {"reward": rm, "verifier": verifier}, backend=_NoGeneration())


def test_baseline_responses_come_from_the_previous_round(tiny_kit, eval_cfg, tmp_path, monkeypatch):
    """Round r's baseline is round r-1's policy: its recorded responses are reused, no engine opened."""
    from herd.core.generation.hf import HFBackend
    import herd.eval.generate as gen

    policy = str(tiny_kit["policy"])
    eval_cfg.safety.enabled = False
    eval_cfg.verifier.enabled = False
    scorers = {"reward": RewardModelScorer(tiny_kit["reward"])}
    first = run_eval(eval_cfg, policy, None, scorers, round_index=0)
    assert first["baseline_source"] is None and first["win_rate"] is None

    def no_engine(*args, **kwargs):
        raise AssertionError("opened an engine for the baseline")

    monkeypatch.setattr(gen, "open_backend", no_engine)
    eval_cfg.output_dir = str(tmp_path / "round1")
    eval_cfg.previous_metrics = str(Path(first["samples_file"]).parent / "metrics.json")
    second = run_eval(eval_cfg, policy, policy, scorers, backend=HFBackend(policy), round_index=1)
    assert second["baseline_source"] == "previous_round"
    assert second["tie_rate"] == 1.0 and second["length_drift"] == 0
    assert second["baseline_reward_mean"] == pytest.approx(first["reward_mean"])
    # different generation settings: the recorded responses do not apply, so an engine is needed
    eval_cfg.output_dir = str(tmp_path / "round1b")
    eval_cfg.generation.max_new_tokens = 5
    with pytest.raises(AssertionError, match="opened an engine for the baseline"):
        run_eval(eval_cfg, policy, policy, scorers, backend=HFBackend(policy), round_index=1)
