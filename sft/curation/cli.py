"""``herd curate --config X.yaml [key.path=value ...]``: curate one chat dataset.

Only argparse at module level (``herd --help`` must not import torch). The reward model and the
judge backend are built here from paths in the config; the library API takes ready objects.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "curate",
        help="curate SFT data: cleaning rules, quality/difficulty scores, semantic dedup (Llama 3 §4.2.3)",
        description="Reads config.input, writes config.output/{data.jsonl,summary.json,hist_*.png,manifest.json}. "
        "A finished output with the same config and input is left alone; embeddings are cached next "
        "to the output so a killed run resumes.",
    )
    p.add_argument("--config", required=True, help="curation config YAML (see recipes/curation/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. dedup.threshold=0.85")
    p.set_defaults(handler=run)


def judge_backend(cfg):
    """The judge's generation backend from ``judge.model`` when a judge score is switched on
    (shared with the round runner, which curates with the same config keys)."""
    if not (cfg.quality.judge or cfg.difficulty.judge):
        return None
    from herd.core.config import ConfigError
    from herd.core.generation import make_backend

    if not cfg.judge.model:
        raise ConfigError("judge.model: required when quality.judge or difficulty.judge is on")
    return make_backend(cfg.judge.backend, cfg.judge.model)


def quality_scorer(cfg):
    """A reward-model Scorer from ``quality.reward_model``, or None (no RM quality signal)."""
    if not cfg.quality.reward_model:
        return None
    from herd.core.reward_scoring import RewardModelScorer

    q = cfg.quality
    return RewardModelScorer(q.reward_model, batch_size=q.rm_batch_size, max_length=q.rm_max_length)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from herd.core.artifacts import Manifest, hash_config, hash_path, is_complete, write_manifest
    from herd.core.config import ConfigError, load_config, to_dict
    from herd.sft.curation import CurationConfig, curate, write_curated

    cfg = load_config(CurationConfig, args.config, args.overrides)
    for key in ("input", "output"):
        if getattr(cfg, key) is None:
            raise ConfigError(f"{args.config}: {key}: required for herd curate")
    out = Path(cfg.output)
    config_hash = hash_config(to_dict(cfg))
    inputs = {"input": hash_path(cfg.input)}
    if is_complete(out, config_hash, inputs):
        print(f"curate: {out} is up to date (same config and input); nothing to do")
        return 0
    if cfg.dedup.cache_dir is None:
        cfg.dedup.cache_dir = out.parent / f".{out.name}.embed-cache"
    backend = judge_backend(cfg)
    try:
        result = curate(cfg, cfg.input, quality_scorer=quality_scorer(cfg), judge_backend=backend)
    finally:
        if backend is not None:
            backend.close()
    write_curated(result, out, config=to_dict(cfg))
    metrics = {"rows_in": result.summary["rows_in"], "rows_out": result.summary["rows_out"]}
    write_manifest(out, Manifest(stage="curate", config_hash=config_hash, inputs=inputs, metrics=metrics))
    for step in result.summary["steps"]:
        print(f"  {step['step']:<32} {step['rows_in']:>8} -> {step['rows_out']:<8} (-{step['removed']})")
    print(f"curate: {metrics['rows_in']} rows in, {metrics['rows_out']} out -> {out / 'data.jsonl'}")
    return 0
