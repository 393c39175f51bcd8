"""The round config: one YAML file describing N rounds of the Llama 3 post-training loop.

Stage settings (``sft:``, ``dpo:``, ``sampling:`` ...) are the stage's own config keys minus the
ones the round runner fills in per round (model paths, data paths, output dirs). They are checked
against the stage's own dataclass when the round config is loaded, so a misspelt SFT key fails
before round 1 starts, naming the file and ``sft.<key>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from herd.core.config import ConfigError, apply_overrides, from_dict, read_yaml


@dataclass
class PromptSet:
    """A prompt file for sampling or eval; rows ``{"id", "messages" | "prompt", "reference"?}``."""

    path: str
    """JSONL file (relative paths are relative to the round config file)."""
    name: str = "default"
    """Capability name (Llama 3 uses per-capability system prompts)."""
    system_prompt: str | None = None
    """Prepended as a system message to every prompt of this set."""
    limit: int | None = None
    """Use only the first N rows (smoke runs)."""
    format: Literal["rows", "gsm8k", "hh-rlhf"] = "rows"
    """'rows' = herd prompt rows; 'gsm8k' / 'hh-rlhf' = those data sets' own files."""


@dataclass
class DataSources:
    """Where each round's data comes from."""

    prompts: list[PromptSet]
    """Rejection-sampling prompt sets."""
    sft: list[str] = field(default_factory=list)
    """Seed SFT data (chat rows), used by the warm start and, when ``sft.include_seed_data``, every round."""
    preference: list[str] = field(default_factory=list)
    """Human preference data for the reward model: rows prompt/chosen/rejected, or HH-RLHF
    dialogue pairs (converted on the fly)."""
    eval_prompts: list[PromptSet] = field(default_factory=list)
    """Held-out prompts for eval (empty = the sampling prompts)."""


@dataclass
class WarmStart:
    """Optional round 0: SFT of the base model on the seed data (the demo's 'imitation' model)."""

    enabled: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    """SFT settings (keys of herd.sft.SFTConfig, minus model/data/output_dir)."""


@dataclass
class Averaging:
    """Llama 3 §4.1.5: train a stage several times and average the checkpoints."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    """One settings override per extra run (e.g. ``[{seed: 1}, {seed: 2}]``); empty = off."""
    weights: list[float] | None = None
    """Averaging weights (first = the main run); None = uniform."""


@dataclass
class RewardStage:
    enabled: bool = False
    """Train a reward model each round (off when a verifier or a fixed RM judges)."""
    model: str | None = None
    """Initial RM checkpoint (a scalar-head classifier); None = start from base_model's RM."""
    fixed_path: str | None = None
    """Use this trained RM for every round instead of training one."""
    data: Literal["human", "human+pairs"] = "human+pairs"
    """What the RM trains on: human preference data, plus the previous rounds' pairs."""
    settings: dict[str, Any] = field(default_factory=dict)
    average: Averaging = field(default_factory=Averaging)


@dataclass
class SamplingStage:
    settings: dict[str, Any] = field(default_factory=dict)
    """Keys of herd.rejection_sampling.SampleConfig (K, temperature, selection ...)."""
    scorers: list[Literal["reward", "verifier"]] = field(default_factory=lambda: ["reward"])
    """Which scorers judge samples; their combination is a sampling setting."""
    sample_from: Literal["latest", "warm_start", "base"] = "latest"
    """Llama 3 samples from the latest (best) policy."""


@dataclass
class SFTStage:
    enabled: bool = True
    init: Literal["base", "previous"] = "base"
    """Llama 3 restarts SFT from the pre-trained checkpoint each round; 'previous' continues."""
    data: Literal["accumulate", "latest"] = "accumulate"
    """'accumulate' = the kept samples of every round so far (Llama 3); 'latest' = this round's."""
    include_seed_data: bool = False
    """Add data.sft to every round's SFT data."""
    curate: dict[str, Any] | None = None
    """herd.sft.curation settings to clean/score/dedup SFT data before training; None = off.
    ``quality.reward_model: round`` scores quality with the reward model the round sampled with
    (Llama 3 keeps the RM's top quartile); embeddings are cached in WORKDIR/cache across rounds."""
    settings: dict[str, Any] = field(default_factory=dict)
    average: Averaging = field(default_factory=Averaging)


@dataclass
class DPOStage:
    enabled: bool = True
    reference: Literal["sft", "rolling"] = "sft"
    """'sft' = this round's SFT model (Llama 3); 'rolling' = the previous round's policy."""
    data: Literal["accumulate", "latest"] = "latest"
    settings: dict[str, Any] = field(default_factory=dict)
    average: Averaging = field(default_factory=Averaging)


@dataclass
class SafetyStage:
    classifier: str | None = "embedding"
    """'embedding' (shipped guard), a Llama-Guard checkpoint dir, or None = no safety filtering."""
    filter_prompts: bool = False
    """Drop unsafe prompts before sampling."""
    filter_samples: bool = True
    """Classify samples; unsafe ones are never kept or 'chosen'."""
    fail_closed: bool = True
    """A sample whose classification fails counts as unsafe."""


@dataclass
class EvalStage:
    settings: dict[str, Any] = field(default_factory=dict)
    """Keys of herd.eval.EvalConfig (suites, generation, gates)."""
    reward_model: str | None = None
    """The fixed RM that judges reward and win rate in every round; None = the round's RM."""


@dataclass
class ControlRun:
    """The demo's control: the same number of optimizer steps spent on plain SFT of the seed data."""

    enabled: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Launch:
    """How training stages run. Hardware, kept apart from the experiment (alignment-handbook style)."""

    mode: Literal["in_process", "accelerate"] = "in_process"
    config_file: str | None = None
    """accelerate launch config (recipes/accelerate/*.yaml)."""
    num_processes: int = 1
    main_process_port: int | None = None
    """Rendezvous port for multi-process launches; None = a free port picked at each launch, so
    two runs on one machine do not both take accelerate's default 29500 and fail."""


@dataclass
class Generation:
    backend: Literal["auto", "vllm", "hf"] = "auto"
    """'auto' = vLLM when installed."""
    engine: dict[str, Any] = field(default_factory=dict)
    """herd.core.generation.vllm.VLLMEngineConfig keys (tensor_parallel_size, kv_cache_gib ...)."""
    eval_backend: Literal["same", "vllm", "hf"] = "same"


@dataclass
class RoundConfig:
    """A whole post-training run."""

    name: str
    base_model: str
    """HF dir or hub id of the policy to start from; 'tiny:<shape>' builds the tiny model."""
    rounds: int
    data: DataSources
    seed: int = 0
    warm_start: WarmStart = field(default_factory=WarmStart)
    reward: RewardStage = field(default_factory=RewardStage)
    sampling: SamplingStage = field(default_factory=SamplingStage)
    sft: SFTStage = field(default_factory=SFTStage)
    dpo: DPOStage = field(default_factory=DPOStage)
    safety: SafetyStage = field(default_factory=SafetyStage)
    eval: EvalStage = field(default_factory=EvalStage)
    control: ControlRun = field(default_factory=ControlRun)
    launch: Launch = field(default_factory=Launch)
    generation: Generation = field(default_factory=Generation)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError("rounds must be >= 1")


def _resolve(base: Path, p: str) -> str:
    if p.startswith("tiny:") or "://" in p:
        return p
    path = Path(p)
    return str(path if path.is_absolute() else (base / path))


def resolve_paths(cfg: RoundConfig, base: Path) -> RoundConfig:
    """Make data paths absolute (relative to the config file's directory)."""
    for ps in list(cfg.data.prompts) + list(cfg.data.eval_prompts):
        ps.path = _resolve(base, ps.path)
    cfg.data.sft = [_resolve(base, p) for p in cfg.data.sft]
    cfg.data.preference = [_resolve(base, p) for p in cfg.data.preference]
    if not cfg.base_model.startswith("tiny:") and (base / cfg.base_model).exists():
        cfg.base_model = str(base / cfg.base_model)
    if cfg.launch.config_file:
        cfg.launch.config_file = _resolve(base, cfg.launch.config_file)
    return cfg


def check_files(cfg: RoundConfig, source: str) -> None:
    """Data files must exist before round 1 starts: a typo should not surface in round 3."""
    entries = [(f"data.prompts[{i}].path", p.path) for i, p in enumerate(cfg.data.prompts)]
    entries += [(f"data.eval_prompts[{i}].path", p.path) for i, p in enumerate(cfg.data.eval_prompts)]
    entries += [(f"data.sft[{i}]", p) for i, p in enumerate(cfg.data.sft)]
    entries += [(f"data.preference[{i}]", p) for i, p in enumerate(cfg.data.preference)]
    for key, path in entries:
        if not Path(path).exists():
            raise ConfigError(f"{source}: {key}: data file not found: {path}")


def load_round_config(path: Path | str, overrides: list[str] | None = None, check_data: bool = True) -> RoundConfig:
    """Read, validate (types, unknown keys, stage settings against stage schemas), resolve paths."""
    p = Path(path)
    raw = apply_overrides(read_yaml(p), overrides or [])
    cfg = from_dict(RoundConfig, raw, source=str(p))
    resolve_paths(cfg, p.parent.resolve())
    from herd.loop.stage_settings import validate_stage_settings

    validate_stage_settings(cfg, str(p))
    if check_data:
        check_files(cfg, str(p))
    return cfg
