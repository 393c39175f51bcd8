"""``herd sample --config X.yaml [key.path=value ...]``: the rejection-sampling stage on its own.

It lives in herd.loop, not in the stage, because it wires in the guard from herd.safety (a stage
never imports another stage).
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="rejection sampling: K samples per prompt, score, keep the best (SFT) and best/worst pairs (DPO)",
    )
    p.add_argument("--config", required=True, help="stage config YAML (see recipes/sampling/)")
    p.add_argument("overrides", nargs="*", help="config overrides, key.path=value (e.g. sampling.k=4)")
    p.set_defaults(handler=_sample)


def build_safety(cfg):
    """The guard named by ``cfg.safety`` (None when the config has no safety section)."""
    if cfg.safety is None:
        return None
    from herd.safety import load_classifier

    return load_classifier(cfg.safety.classifier)


def _sample(args) -> int:
    from herd.core.config import load_config
    from herd.rejection_sampling import SampleConfig, build_scorers, run_sampling

    cfg = load_config(SampleConfig, args.config, args.overrides)
    out = run_sampling(cfg, build_scorers(cfg.scorers), safety=build_safety(cfg))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    keys = ("prompts", "samples", "generated_tokens", "truncated", "sft_kept", "pairs", "mean_scores")
    print(json.dumps({"output_dir": str(out), **{k: metrics.get(k) for k in keys}}, indent=2))
    return 0
