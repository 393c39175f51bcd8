"""Rejection sampling (Llama 3 §4.2.2): K samples per prompt from the latest policy, scored by a
reward model and/or verifiers and a guard; the best sample of each prompt becomes SFT data and
best-vs-worst pairs become DPO data.

Public API (the round loop calls these)::

    from herd.rejection_sampling import SampleConfig, run_sampling
    out_dir = run_sampling(cfg, scorers={"reward": rm}, safety=guard)
"""

from herd.rejection_sampling.config import (
    PromptSetConfig,
    SafetySpec,
    SampleConfig,
    SamplerConfig,
    ScorerSpec,
    SelectionConfig,
)
from herd.rejection_sampling.prompts import Prompt, PromptError, load_prompts
from herd.rejection_sampling.scorers import build_scorers
from herd.rejection_sampling.select import Candidate, Pair, Ranking, make_pair, make_safety_pair, select_best
from herd.rejection_sampling.stage import run_sampling, stage_config_hash

__all__ = [
    "Candidate",
    "Pair",
    "Prompt",
    "PromptError",
    "PromptSetConfig",
    "Ranking",
    "SafetySpec",
    "SampleConfig",
    "SamplerConfig",
    "ScorerSpec",
    "SelectionConfig",
    "build_scorers",
    "load_prompts",
    "make_pair",
    "make_safety_pair",
    "run_sampling",
    "select_best",
    "stage_config_hash",
]
