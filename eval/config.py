"""Typed configuration of one evaluation (``herd eval`` and the round loop's eval stage).

Every suite can be switched off on its own: a demo without a guard evaluates reward and accuracy
only, a safety audit runs only the safety suite. Paths are resolved by :func:`resolve_data_path`
(absolute, else relative to the working directory, else relative to the repository root) so the
shipped recipes work from any directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass
class GenerationSettings:
    """How eval responses are generated (greedy unless a suite asks for samples)."""

    backend: Literal["auto", "vllm", "hf"] = "auto"
    """'auto' = vLLM when importable, else transformers generate (herd.core.generation)."""
    max_new_tokens: int = 256
    """Fixed maximum response length in tokens; longer responses are truncated and counted."""
    seed: int = 0
    """Base seed of the sampled generations (pass@k); greedy decoding ignores it."""
    batch_size: int = 16
    """Prompts per forward batch for the HF backend (vLLM schedules on its own)."""


@dataclass
class RewardSuite:
    """Reward-model score of the policy's responses on held-out prompts."""

    enabled: bool = True
    prompts: str | None = None
    """JSONL(.gz) of prompts: rows with 'messages', 'prompt' or 'question', or HH-RLHF
    'chosen' dialogues (the first Human turn becomes the prompt)."""
    limit: int | None = 64
    """Use the first N prompts (None = all)."""
    scorer: str = "reward"
    """Key of the reward scorer in the ``scorers`` mapping handed to run_eval."""
    quantiles: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 0.75, 0.9])
    """Reported as reward_p10, reward_p25, ... (linear interpolation, numpy's default)."""
    system_prompt: str | None = None
    """Optional system message placed before each prompt (Llama 3 uses per-capability ones)."""


@dataclass
class WinRateSuite:
    """Policy vs baseline (the previous round) on the reward prompts, judged by the reward model."""

    enabled: bool = True
    tie_margin: float = 0.0
    """|r_policy - r_baseline| <= tie_margin counts as a tie (reported apart from wins/losses)."""
    confidence: float = 0.95
    """Confidence level of the Wilson score interval on the win rate."""


@dataclass
class VerifierSuite:
    """Exact-match accuracy on a verifiable task (GSM8K or the demo task), greedy and pass@k."""

    enabled: bool = True
    data: str | None = None
    """GSM8K JSONL ('question', 'answer') or prompt rows ('messages' or 'prompt', 'reference')."""
    limit: int | None = 64
    scorer: str = "verifier"
    """Key of the verifier in the ``scorers`` mapping (e.g. herd.core.verifiers.NumberMatchVerifier)."""
    pass_at_k: list[int] = field(default_factory=lambda: [1, 4])
    """k values for pass@k (unbiased estimator, Chen et al. 2021); empty list = greedy only."""
    num_samples: int = 8
    """Samples per prompt for pass@k (n >= max k)."""
    temperature: float = 0.8
    """Sampling temperature of the pass@k samples."""
    system_prompt: str | None = None


@dataclass
class SafetySuite:
    """Violation rate on unsafe prompts (guard) and false refusal rate on safe ones (refusal detector)."""

    enabled: bool = True
    xstest: str | None = "data/xstest/xstest_prompts.csv"
    """XSTest CSV: 'contrast_*' types are unsafe prompts (VR), the rest safe prompts (FRR)."""
    extra_unsafe: str | None = None
    """Optional JSONL of adversarial prompts ('prompt' or 'messages', optional 'category') added to
    the unsafe set, e.g. red-team prompts."""
    limit_unsafe: int | None = 64
    """At most N unsafe prompts, a seeded sample that keeps every category represented."""
    limit_safe: int | None = 64
    """At most N safe prompts, sampled the same way."""
    per_category: bool = True
    """Also report VR/FRR per prompt category (XSTest 'type')."""
    system_prompt: str | None = None


@dataclass
class LengthSuite:
    """Response length (tokens) and its drift against the baseline's / previous round's responses."""

    enabled: bool = True


@dataclass
class LMEvalSuite:
    """Standard benchmarks through EleutherAI's lm-evaluation-harness (extra: ``herd[lm-eval]``)."""

    enabled: bool = False
    tasks: list[str] = field(default_factory=lambda: ["hellaswag"])
    limit: int | None = None
    """Examples per task (None = the full task)."""
    batch_size: int = 8
    num_fewshot: int | None = None


@dataclass
class Gate:
    """A regression gate on one metric of metrics.json; every bound set must hold."""

    metric: str
    max_increase: float | None = None
    """Fail when metric - previous round's metric > this (e.g. violation_rate: 0.02)."""
    max_decrease: float | None = None
    """Fail when previous round's metric - metric > this (e.g. verifier_accuracy: 0.05)."""
    min: float | None = None
    """Fail when the metric is below this absolute floor."""
    max: float | None = None
    """Fail when the metric is above this absolute ceiling."""


@dataclass
class EvalConfig:
    """One evaluation of a policy (optionally against a baseline); the suites run in order."""

    output_dir: str = "eval_out"
    """Where metrics.json and samples.jsonl are written."""
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    reward: RewardSuite = field(default_factory=RewardSuite)
    win_rate: WinRateSuite = field(default_factory=WinRateSuite)
    verifier: VerifierSuite = field(default_factory=VerifierSuite)
    safety: SafetySuite = field(default_factory=SafetySuite)
    length: LengthSuite = field(default_factory=LengthSuite)
    lm_eval: LMEvalSuite = field(default_factory=LMEvalSuite)
    gates: list[Gate] = field(default_factory=list)
    previous_metrics: str | None = None
    """The previous round's metrics.json: relative gates compare against it, and its samples.jsonl
    is the length-drift reference when no baseline model is given."""


def resolve_data_path(path: str | Path, field_name: str) -> Path:
    """Absolute as given; else relative to the working directory; else to the repo root.

    Raises FileNotFoundError naming the config field, so a typo is reported where it was made.
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        candidates = [p]
    else:
        from herd.core.tiny import repo_root

        candidates = [Path.cwd() / p, repo_root() / p]
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"{field_name}: {path}: no such file (looked in {', '.join(map(str, candidates))})")
