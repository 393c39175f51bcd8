"""Turn a round config's per-stage settings into each stage's own typed config.

The round config holds only what the user chooses (``sft.settings.learning_rate``); the runner
supplies what changes per round (model, data, output_dir). Both meet here, in one function per
stage, so the round config is validated against exactly the configs the stages will receive.
"""

from __future__ import annotations

from typing import Any

from herd.core.config import ConfigError, from_dict

#: Keys the runner fills per round; a round config that sets them is refused (it would be ignored).
RUNNER_KEYS: dict[str, tuple[str, ...]] = {
    "sft": ("model", "data", "output_dir"),
    "warm_start": ("model", "data", "output_dir"),
    "control": ("model", "data", "output_dir"),
    "reward": ("model", "output_dir", "data"),
    "dpo": ("model", "output_dir", "data", "reference", "reference_path"),
    "sampling": ("model", "output_dir", "prompt_sets", "round"),
    "eval": ("output_dir", "previous_metrics"),
    "curate": ("input", "output"),
}

_PLACEHOLDER = "/__filled_by_the_round_runner__"


def _schema(stage: str):
    if stage in ("sft", "warm_start", "control"):
        from herd.sft import SFTConfig

        return SFTConfig
    if stage == "reward":
        from herd.preference import RewardConfig

        return RewardConfig
    if stage == "dpo":
        from herd.preference import DPOStageConfig

        return DPOStageConfig
    if stage == "sampling":
        from herd.rejection_sampling import SampleConfig

        return SampleConfig
    if stage == "eval":
        from herd.eval import EvalConfig

        return EvalConfig
    if stage == "curate":
        from herd.sft.curation import CurationConfig

        return CurationConfig
    raise KeyError(stage)


def _placeholders(stage: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "model": _PLACEHOLDER,
        "output_dir": _PLACEHOLDER,
        "round": 0,
        "prompt_sets": [{"path": _PLACEHOLDER}],
        "input": _PLACEHOLDER,
        "output": _PLACEHOLDER,
        "previous_metrics": None,
        "reference_path": None,
    }
    values["data"] = [_PLACEHOLDER] if stage in ("sft", "warm_start", "control") else {"path": _PLACEHOLDER}
    if stage == "dpo":
        values["reference"] = "initial"
    return {k: values[k] for k in RUNNER_KEYS[stage]}


def build_stage_config(stage: str, settings: dict[str, Any], filled: dict[str, Any], source: str = "", path: str = ""):
    """The stage's config from user ``settings`` plus runner-``filled`` keys."""
    clash = sorted(set(settings) & set(RUNNER_KEYS[stage]))
    if clash:
        raise ConfigError(
            f"{source}: {path}.{clash[0]}: set by the round runner each round; remove it from the round config"
        )
    return from_dict(_schema(stage), {**settings, **filled}, source=source, path=path)


def validate_stage_settings(cfg, source: str) -> None:
    """Check every stage's settings against its schema now, not when its round comes."""
    checks = [
        ("sft", cfg.sft.settings, "sft.settings"),
        ("dpo", cfg.dpo.settings, "dpo.settings"),
        ("reward", cfg.reward.settings, "reward.settings"),
        ("sampling", cfg.sampling.settings, "sampling.settings"),
        ("eval", cfg.eval.settings, "eval.settings"),
    ]
    if cfg.warm_start.enabled:
        checks.append(("warm_start", cfg.warm_start.settings, "warm_start.settings"))
    if cfg.control.enabled:
        checks.append(("control", cfg.control.settings, "control.settings"))
    if cfg.sft.curate is not None:
        checks.append(("curate", cfg.sft.curate, "sft.curate"))
    for stage, settings, path in checks:
        build_stage_config(stage, settings, _placeholders(stage), source, path)
    for stage, avg, path in (("sft", cfg.sft.average, "sft.average"), ("dpo", cfg.dpo.average, "dpo.average"),
                             ("reward", cfg.reward.average, "reward.average")):
        for i, run in enumerate(avg.runs):
            base = cfg.sft.settings if stage == "sft" else cfg.dpo.settings if stage == "dpo" else cfg.reward.settings
            build_stage_config(stage, {**base, **run}, _placeholders(stage), source, f"{path}.runs[{i}]")
        if avg.weights is not None and len(avg.weights) != len(avg.runs) + 1:
            raise ConfigError(f"{source}: {path}.weights: {len(avg.weights)} weights for {len(avg.runs) + 1} checkpoints")
