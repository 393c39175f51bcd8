"""``herd eval --config X.yaml [key=value ...]``: evaluate one checkpoint (optionally vs a baseline).

Lives in herd.loop, not herd.eval, because it builds the judges from other stages: the reward
model (herd.core.reward_scoring), the verifier (herd.core.verifiers), the guard and the refusal
detector (herd.safety). herd.eval itself only sees objects fitting herd.core.scoring's protocols.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from herd.eval.config import EvalConfig


@dataclass
class EvalJobConfig:
    """What ``herd eval`` evaluates and with which judges; ``eval`` holds the suites."""

    model: str
    """Policy checkpoint directory to evaluate."""
    baseline: str | None = None
    """Checkpoint to compare with (the previous round): win rate and length drift."""
    round: int | None = None
    """Round index recorded in metrics.json (None outside a round loop)."""
    reward_model: str | None = None
    """Reward-model directory; registered under the name ``eval.reward.scorer``."""
    verifier: Literal["number_match"] | None = "number_match"
    """Verifier for the verifier suite (final-number exact match, herd.core.verifiers)."""
    guard: str | None = "embedding"
    """Guard for VR, a herd.safety.load_classifier spec: 'embedding' (the shipped embedding guard),
    a .npz head file, a guard model directory (e.g. Llama-Guard-3-1B) or 'cascade:DIR'."""
    guard_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the guard (threshold, backend, form, ...)."""
    refusal: Literal["detector", "keyword"] | None = "detector"
    """Refusal judge for FRR: herd.safety.RefusalDetector (the shipped encoder head) or the
    keyword-prefix baseline KeywordRefusalDetector."""
    history: list[str] = field(default_factory=list)
    """metrics.json files of earlier rounds, oldest first; with report_dir, the report covers
    them plus this evaluation."""
    report_dir: str | None = None
    """When set, write report.md + plots over ``history`` + this evaluation into this folder."""
    eval: EvalConfig = field(default_factory=EvalConfig)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint: reward, win rate, verifier accuracy, VR/FRR, report")
    p.add_argument("--config", required=True, help="eval YAML (see recipes/eval/)")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. eval.verifier.limit=16")
    p.set_defaults(handler=_eval)


def build_judges(cfg: EvalJobConfig) -> tuple[dict, Any, Any]:
    """(scorers, safety judge, refusal judge) for the suites the config enables."""
    e = cfg.eval
    scorers: dict = {}
    if (e.reward.enabled or e.win_rate.enabled) and cfg.reward_model:
        from herd.core.reward_scoring import RewardModelScorer

        scorers[e.reward.scorer] = RewardModelScorer(cfg.reward_model, name=e.reward.scorer)
    if e.verifier.enabled and cfg.verifier == "number_match":
        from herd.core.verifiers import NumberMatchVerifier

        scorers[e.verifier.scorer] = NumberMatchVerifier()
    safety = refusal = None
    if e.safety.enabled:
        from herd import safety as safety_stage

        safety = safety_stage.load_classifier(cfg.guard, **cfg.guard_options) if cfg.guard else None
        if cfg.refusal == "detector":
            refusal = safety_stage.RefusalDetector()
        elif cfg.refusal == "keyword":
            refusal = safety_stage.KeywordRefusalDetector()
    return scorers, safety, refusal


def run_job(cfg: EvalJobConfig) -> dict:
    """Evaluate, then (optionally) write the cross-round report; returns the metrics dict."""
    from herd.eval import read_metrics, run_eval, write_report

    scorers, safety, refusal = build_judges(cfg)
    metrics = run_eval(cfg.eval, cfg.model, cfg.baseline, scorers, safety, refusal, round_index=cfg.round)
    if cfg.report_dir:
        history = [read_metrics(p) for p in cfg.history] + [metrics]
        write_report(history, cfg.report_dir)
    return metrics


def _eval(args) -> int:
    from herd.core.config import load_config

    cfg = load_config(EvalJobConfig, args.config, args.overrides)
    for key in ("model", "baseline", "reward_model"):
        path = getattr(cfg, key)
        # Hub ids are fine with network access; offline (herd's default) only local dirs can load.
        if path and not Path(path).exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
            raise FileNotFoundError(f"{args.config}: {key}: {path}: no such model directory (HF_HUB_OFFLINE=1)")
    metrics = run_job(cfg)
    keys = ("reward_mean", "win_rate", "verifier_accuracy", "violation_rate", "false_refusal_rate", "length_mean")
    summary = ", ".join(f"{k}={metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), (int, float)))
    print(f"eval: {summary or 'no metrics'} -> {Path(cfg.eval.output_dir) / 'metrics.json'}")
    for failure in metrics.get("gate_failures") or []:
        print(f"eval: gate failed: {failure}")
    return 0 if metrics.get("gates_passed", True) else 1
