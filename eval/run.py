"""``run_eval``: generate with the policy (and baseline), score, write metrics.json + samples.jsonl.

Order matters on a GPU: all generation happens first and each engine we open is closed before
the next one starts and before the reward model / guard are called. The policy backend may be
handed in already open (the round loop reuses its vLLM engine) and is then left open; the
baseline's responses come from the previous round's eval when it recorded them, so the loop does
not need a second engine beside its own.

Outputs in ``cfg.output_dir`` (schema: docs/eval.md):

* ``generations.json`` — the raw generations, keyed by everything that determines them, so a run
  killed while scoring reuses them instead of generating again;
* ``samples.jsonl`` — one row per generated response with its scores (what plots re-read);
* ``metrics.json`` — the flat metrics dict, written last: its presence means the eval finished.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Mapping

from herd.core.artifacts import atomic_write_json, atomic_write_jsonl, hash_config
from herd.core.config import to_dict
from herd.core.scoring import RefusalJudge, SafetyJudge, Scorer
from herd.eval import metrics as M
from herd.eval import suites
from herd.eval.config import EvalConfig, resolve_data_path
from herd.eval.gates import check_gates
from herd.eval.generate import GENERATIONS_FILE, Generated, generate_all

log = logging.getLogger(__name__)

#: Always present in metrics.json (None when the suite that computes them is off), so readers such
#: as the round loop's status table can rely on the keys.
HEADLINE_KEYS = ("reward_mean", "win_rate", "verifier_accuracy", "violation_rate", "false_refusal_rate", "length_mean")

METRICS_FILE = "metrics.json"
SAMPLES_FILE = "samples.jsonl"


def _general_needed(cfg: EvalConfig) -> bool:
    return cfg.reward.enabled or cfg.win_rate.enabled or cfg.length.enabled


def check_requirements(
    cfg: EvalConfig, scorers: Mapping[str, Scorer], safety: SafetyJudge | None, refusal: RefusalJudge | None
) -> None:
    """Fail before any generation when an enabled suite lacks its data or its judge."""
    problems = []
    if _general_needed(cfg) and not cfg.reward.prompts:
        problems.append("reward.prompts is required by the reward, win_rate and length suites (or disable them)")
    if (cfg.reward.enabled or cfg.win_rate.enabled) and cfg.reward.scorer not in scorers:
        problems.append(f"reward/win_rate suites need scorer {cfg.reward.scorer!r}; got {sorted(scorers) or 'none'}")
    v = cfg.verifier
    if v.enabled:
        if not v.data:
            problems.append("verifier.data is required by the verifier suite (or disable it)")
        if v.scorer not in scorers:
            problems.append(f"verifier suite needs scorer {v.scorer!r}; got {sorted(scorers) or 'none'}")
        if v.pass_at_k and max(v.pass_at_k) > v.num_samples:
            problems.append(f"verifier.num_samples={v.num_samples} is below the largest pass@k k={max(v.pass_at_k)}")
        if any(k < 1 for k in v.pass_at_k):
            problems.append("verifier.pass_at_k values must be >= 1")
    if any(not 0.0 <= q <= 1.0 for q in cfg.reward.quantiles):
        problems.append(f"reward.quantiles must lie in [0, 1], got {cfg.reward.quantiles}")
    if not 0.0 < cfg.win_rate.confidence < 1.0:
        problems.append(f"win_rate.confidence must lie in (0, 1), got {cfg.win_rate.confidence}")
    if cfg.win_rate.tie_margin < 0:
        problems.append(f"win_rate.tie_margin must be >= 0, got {cfg.win_rate.tie_margin}")
    if cfg.generation.max_new_tokens < 1:
        problems.append("generation.max_new_tokens must be >= 1")
    s = cfg.safety
    if s.enabled:
        if safety is None or refusal is None:
            problems.append("the safety suite needs both a safety judge (VR) and a refusal judge (FRR); disable it otherwise")
        if not s.xstest and not s.extra_unsafe:
            problems.append("safety.xstest or safety.extra_unsafe must name a prompt file")
    if problems:
        raise ValueError("eval config: " + "; ".join(problems))


def load_sets(cfg: EvalConfig) -> dict[str, list[dict]]:
    """The prompt sets the enabled suites need, keyed 'general', 'verifier', 'unsafe', 'safe'."""
    sets: dict[str, list[dict]] = {}
    if _general_needed(cfg):
        path = resolve_data_path(cfg.reward.prompts, "reward.prompts")  # type: ignore[arg-type]
        sets["general"] = suites.load_prompt_rows(path, cfg.reward.limit, "prompt")
    if cfg.verifier.enabled:
        path = resolve_data_path(cfg.verifier.data, "verifier.data")  # type: ignore[arg-type]
        sets["verifier"] = suites.load_verifier_rows(path, cfg.verifier.limit)
    if cfg.safety.enabled:
        unsafe, safe = [], []
        if cfg.safety.xstest:
            unsafe, safe = suites.load_xstest(resolve_data_path(cfg.safety.xstest, "safety.xstest"))
        if cfg.safety.extra_unsafe:
            path = resolve_data_path(cfg.safety.extra_unsafe, "safety.extra_unsafe")
            unsafe += suites.load_prompt_rows(path, None, "unsafe")
        seed = cfg.generation.seed
        sets["unsafe"] = suites.stratified_limit(unsafe, cfg.safety.limit_unsafe, seed)
        sets["safe"] = suites.stratified_limit(safe, cfg.safety.limit_safe, seed)
    return sets


def _records(gen: Generated, set_name: str, model: str) -> list[dict]:
    """samples.jsonl rows of one prompt set (scores are added by the suites)."""
    rows = []
    for row, samples in zip(gen.rows[set_name], gen.samples[set_name]):
        for s in samples:
            rows.append({
                "set": set_name, "model": model, "id": row["id"], "k": s.index,
                "category": row.get("category"), "prompt": row["messages"][-1]["content"],
                "response": s.text, "n_tokens": gen.n_tokens(s), "finish_reason": s.finish_reason,
            })
    return rows


def _reward_suites(cfg, scorers, policy: Generated, baseline: Generated | None, recs, brecs) -> dict:
    out: dict = {}
    scorer = scorers[cfg.reward.scorer]
    rows = policy.rows["general"]
    rewards = [float(x) for x in scorer.score(policy.conversations("general"), rows)]
    for r, x in zip(recs, rewards):
        r["reward"] = x
    if cfg.reward.enabled:
        out.update(M.summary_stats(rewards, "reward", cfg.reward.quantiles))
    if cfg.win_rate.enabled:
        out.update({k: None for k in ("win_rate", "loss_rate", "tie_rate", "win_rate_ci_low", "win_rate_ci_high", "win_rate_n")})
        out["win_rate_ci_method"] = f"wilson-{cfg.win_rate.confidence:g}"
        if baseline is not None:
            base = [float(x) for x in scorer.score(baseline.conversations("general"), rows)]
            for r, x in zip(brecs, base):
                r["reward"] = x
            wr = M.win_rate(rewards, base, cfg.win_rate.tie_margin, cfg.win_rate.confidence)
            out.update({
                "win_rate": wr.win_rate, "loss_rate": wr.losses / wr.n, "tie_rate": wr.ties / wr.n,
                "win_rate_ci_low": wr.ci_low, "win_rate_ci_high": wr.ci_high, "win_rate_n": wr.n,
                "baseline_reward_mean": sum(base) / len(base),
            })
    return out


def _verifier_suite(cfg, scorers, policy: Generated, recs: list[dict], srecs: list[dict]) -> dict:
    v = cfg.verifier
    scorer = scorers[v.scorer]
    rows = policy.rows["verifier"]
    greedy = [float(x) for x in scorer.score(policy.conversations("verifier"), rows)]
    for r, x in zip(recs, greedy):
        r["correct"] = x >= 0.5
    out: dict = {"verifier_accuracy": sum(x >= 0.5 for x in greedy) / len(greedy), "verifier_n": len(greedy)}
    if v.pass_at_k:
        convs = policy.conversations("verifier_sampled")
        meta = [row for row, ss in zip(rows, policy.samples["verifier_sampled"]) for _ in ss]
        flat = [float(x) >= 0.5 for x in scorer.score(convs, meta)]
        for r, ok in zip(srecs, flat):
            r["correct"] = ok
        counts = [sum(flat[i * v.num_samples : (i + 1) * v.num_samples]) for i in range(len(rows))]
        out["verifier_samples_per_prompt"] = v.num_samples
        for k in v.pass_at_k:
            out[f"verifier_pass_at_{k}"] = M.mean_pass_at_k(counts, v.num_samples, k)
    return out


def _safety_suite(cfg, safety: SafetyJudge, refusal: RefusalJudge, policy: Generated, urecs, srecs) -> dict:
    unsafe_rows, safe_rows = policy.rows["unsafe"], policy.rows["safe"]
    verdicts = safety.classify(policy.conversations("unsafe"))
    # Fail closed: a response the guard could not classify counts as a violation.
    flags = [(not v.safe) or v.error is not None for v in verdicts]
    out = M.rate_by_category(flags, [r.get("category") for r in unsafe_rows], "violation_rate")
    out["violation_errors"] = sum(v.error is not None for v in verdicts)
    guard_counts: dict[str, int] = {}
    for rec, v, flag in zip(urecs, verdicts, flags):
        rec.update(violation=flag, p_unsafe=v.p_unsafe, guard_categories=list(v.categories))
        for c in v.categories if flag else []:
            guard_counts[c] = guard_counts.get(c, 0) + 1
    for c in sorted(guard_counts):
        out[f"violation_guard/{c}"] = guard_counts[c] / len(flags)
    unsafe_ref = refusal.detect([r["messages"][-1]["content"] for r in unsafe_rows], policy.texts("unsafe"))
    out["unsafe_refusal_rate"] = sum(v.refusal for v in unsafe_ref) / len(unsafe_ref) if unsafe_ref else None
    safe_ref = refusal.detect([r["messages"][-1]["content"] for r in safe_rows], policy.texts("safe"))
    refused = [v.refusal for v in safe_ref]
    out.update(M.rate_by_category(refused, [r.get("category") for r in safe_rows], "false_refusal_rate"))
    for rec, v in zip(urecs, unsafe_ref):
        rec.update(refusal=v.refusal, p_refusal=v.p_refusal)
    for rec, v in zip(srecs, safe_ref):
        rec.update(refusal=v.refusal, p_refusal=v.p_refusal)
    if not cfg.safety.per_category:
        out = {k: v for k, v in out.items() if "/" not in k}
    return out


def read_metrics(path: str | Path) -> dict:
    """A metrics.json: the dict run_eval wrote, or the last round of a report's history list."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"previous_metrics: {p}: no such file") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"previous_metrics: {p}: not valid JSON ({e.msg})") from e
    if isinstance(data, list) and data and isinstance(data[-1], dict):
        return data[-1]
    if not isinstance(data, dict):
        raise ValueError(f"previous_metrics: {p}: expected a metrics object or a list of them")
    return data


def read_samples(metrics: Mapping, base_dir: str | Path | None = None) -> list[dict]:
    """The samples.jsonl rows a metrics dict points to ([] when the file is gone)."""
    name = metrics.get("samples_file")
    if not name:
        return []
    p = Path(name)
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    if not p.exists():
        return []
    with open(p, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _length_suite(recs: list[dict], brecs: list[dict] | None, previous: Mapping | None) -> dict:
    """Length of the policy's greedy responses on the general prompts; the drift reference is the
    baseline's responses to the same prompts, else the previous round's recorded ones."""
    reference = [r["n_tokens"] for r in brecs] if brecs else None
    source = "baseline" if reference else None
    if reference is None and previous is not None:
        prev = [r for r in read_samples(previous) if r.get("set") == "general" and r.get("model") == "policy"]
        reference = [r["n_tokens"] for r in prev] or None
        source = "previous_round" if reference else None
    out = M.length_metrics(
        [r["n_tokens"] for r in recs], [r["finish_reason"] == "length" for r in recs], reference
    )
    out["length_reference"] = source
    return out


def _clean(value):
    """NaN -> None (JSON has no NaN), recursively."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def run_eval(
    cfg: EvalConfig,
    model_path: str | Path,
    baseline_path: str | Path | None = None,
    scorers: Mapping[str, Scorer] | None = None,
    safety: SafetyJudge | None = None,
    refusal: RefusalJudge | None = None,
    backend=None,
    round_index: int | None = None,
) -> dict:
    """Evaluate ``model_path`` (vs ``baseline_path``), write metrics.json and samples.jsonl into
    ``cfg.output_dir`` and return the flat metrics dict (schema: docs/eval.md)."""
    scorers = dict(scorers or {})
    check_requirements(cfg, scorers, safety, refusal)
    previous = read_metrics(cfg.previous_metrics) if cfg.previous_metrics else None
    sets = load_sets(cfg)
    out_dir = Path(cfg.output_dir).resolve()
    policy, baseline, baseline_source = generate_all(
        cfg, model_path, baseline_path, sets, backend, out_dir / GENERATIONS_FILE, previous
    )
    recs = {name: _records(policy, name, "policy") for name in policy.rows}
    brecs = _records(baseline, "general", "baseline") if baseline else []
    metrics: dict = {
        "round": round_index, "model": str(model_path), "baseline": str(baseline_path) if baseline_path else None,
        "eval_config_hash": hash_config(to_dict(cfg)), "samples_file": str(out_dir / SAMPLES_FILE),
        "baseline_source": baseline_source, **{k: None for k in HEADLINE_KEYS},
    }
    if cfg.reward.enabled or cfg.win_rate.enabled:
        metrics.update(_reward_suites(cfg, scorers, policy, baseline, recs["general"], brecs))
    if cfg.verifier.enabled:
        metrics.update(_verifier_suite(cfg, scorers, policy, recs["verifier"], recs.get("verifier_sampled", [])))
    if cfg.safety.enabled:
        metrics.update(_safety_suite(cfg, safety, refusal, policy, recs["unsafe"], recs["safe"]))
    if cfg.length.enabled:
        metrics.update(_length_suite(recs["general"], brecs or None, previous))
    if cfg.lm_eval.enabled:
        from herd.eval.lm_eval_adapter import run_lm_eval

        metrics.update(run_lm_eval(str(model_path), cfg.lm_eval))
    failures = check_gates(metrics, previous, cfg.gates)
    metrics.update(gates_passed=not failures, gate_failures=failures)
    metrics = _clean(metrics)
    all_recs = [r for rows in recs.values() for r in rows] + brecs
    atomic_write_jsonl(out_dir / SAMPLES_FILE, all_recs)
    atomic_write_json(out_dir / METRICS_FILE, metrics)  # last: its presence marks a finished eval
    for f in failures:
        log.warning("eval gate failed: %s", f)
    return metrics
