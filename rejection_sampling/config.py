"""Typed configuration of the rejection-sampling stage (``herd sample --config X.yaml``).

Experiment knobs only; engine hardware settings sit in :class:`VLLMEngineConfig` under ``engine``.
Every field has a docstring because a misread knob costs a whole sampling run. Relative paths are
relative to the working directory the command runs in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from herd.core.generation import LLAMA3_STOP_TOKENS, SamplingSpec
from herd.core.generation.vllm import VLLMEngineConfig


@dataclass
class PromptSetConfig:
    """One prompt file. Its rows are ``{"id", "messages"}`` or ``{"id", "prompt"}`` JSONL, with
    optional ``"reference"`` (a verifier's answer) and ``"system_prompt"``."""

    path: Path
    """The JSONL file (see ``format``)."""
    name: str | None = None
    """Label recorded on every row (default: the file's stem)."""
    system_prompt: str | None = None
    """Per-capability system prompt prepended to every row of this set (Llama 3 §4.2.2). A row's own
    ``system_prompt`` field or leading system message takes precedence."""
    format: Literal["rows", "gsm8k", "hh-rlhf"] = "rows"
    """'rows' = herd's prompt rows; 'gsm8k' = GSM8K's own format (read by herd.core.verifiers, with
    references); 'hh-rlhf' = HH-RLHF dialogues, prompted up to their last human turn. A file
    ending in .gz is read gzipped."""
    limit: int | None = None
    """Use only the first ``limit`` rows (quick runs)."""
    scorers: list[str] | None = None
    """Names of the scorers that apply to this set (None = all). A verifier only makes sense where
    rows carry a reference; gates on a scorer that does not apply to a set are skipped there."""

    def label(self) -> str:
        return self.name or Path(self.path).stem


@dataclass
class SamplerConfig:
    """How the K samples of a prompt are drawn."""

    k: int = 10
    """Samples per prompt (Llama 3 used 10 to 30)."""
    max_new_tokens: int = 256
    """Fixed maximum output length; samples that hit it are truncated and never kept."""
    temperature: float = 1.0
    """Sampling temperature (0 = greedy, which makes K identical samples: use K=1 then)."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    seed: int = 0
    """Base seed; each sample's seed derives from (seed, prompt id, sample index)."""
    stop_tokens: list[str] = field(default_factory=lambda: list(LLAMA3_STOP_TOKENS))
    """Tokens that end a sample (Llama 3: <|eot_id|>, <|eom_id|>, <|end_of_text|>)."""

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"sampling.k must be >= 1, got {self.k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"sampling.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("sampling.temperature must be >= 0 and sampling.top_p in (0, 1]")

    def spec(self) -> SamplingSpec:
        return SamplingSpec(
            n=self.k,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop_tokens=tuple(self.stop_tokens),
        )


@dataclass
class ScorerSpec:
    """A scorer the ``herd sample`` command builds (the round loop may pass its own objects)."""

    kind: Literal["reward_model", "number_match"]
    """'reward_model' (a scalar-head classifier dir) or 'number_match' (final-number verifier)."""
    model: str | None = None
    """Reward model directory (reward_model only)."""
    batch_size: int = 16
    """Conversations per reward-model forward pass."""
    max_length: int = 2048
    """Reward-model input length; longer conversations keep their end (the response)."""
    sort_by_length: bool = True
    """Batch conversations of similar length together (less padding)."""

    def __post_init__(self) -> None:
        if self.kind == "reward_model" and not self.model:
            raise ValueError("a reward_model scorer needs 'model' (the reward model directory)")


@dataclass
class SafetySpec:
    """The guard that classifies prompts and responses (built by herd.safety)."""

    classifier: str | None = None
    """What ``herd.safety.load_classifier`` loads: None or 'embedding' = the shipped embedding guard,
    otherwise a guard checkpoint directory."""
    classify_prompts: bool = True
    """Record a verdict for each prompt (kept on every row; selection does not depend on it)."""
    fail_closed: bool = True
    """A verdict carrying an error counts as unsafe."""


@dataclass
class SelectionConfig:
    """Best-of-K and pair rules. A sample is *eligible* (may be kept or chosen) when it finished
    with a stop token, the guard judged it safe, and it passes every ``require`` gate."""

    rank_by: dict[str, float] | None = None
    """Weights of the scorers whose weighted sum ranks samples (e.g. ``{reward: 1.0}``). None is
    allowed when there is exactly one scorer. A verifier that only ranks still lets a wrong answer
    be kept when no sample is right; put it in ``require`` to keep only correct ones."""
    require: dict[str, float] = field(default_factory=dict)
    """Gates: scorer name -> minimum score (e.g. ``{verifier: 1.0}`` = reward only among
    verified-correct samples)."""
    min_score: float | None = None
    """SFT keeps a prompt's best sample only when its rank score is at least this."""
    pair_margin: float = 0.0
    """Minimum rank-score gap between chosen and rejected when both pass the gates (a gate
    difference, e.g. correct over wrong, is a preference by itself). Equal scores never pair."""
    rejected_may_be_truncated: bool = True
    """A truncated sample may serve as 'rejected' (it never serves as 'chosen')."""
    safety_pairs: bool = False
    """Also emit a pair per prompt with a safe sample chosen over the most unsafe one (needs a guard)."""

    def __post_init__(self) -> None:
        if self.pair_margin < 0:
            raise ValueError(f"selection.pair_margin must be >= 0, got {self.pair_margin}")


@dataclass
class SampleConfig:
    """The whole ``herd sample`` stage: prompts -> K samples -> scores -> SFT rows and DPO pairs."""

    model: str
    """The sampling policy (latest best model of the round): HF directory."""
    output_dir: Path
    """Where the datasets, metrics and manifest go (resumable)."""
    prompt_sets: list[PromptSetConfig]
    """Prompt files, processed in this order."""
    round: int = 0
    """Round number recorded on every row."""
    sampling: SamplerConfig = field(default_factory=SamplerConfig)
    """K, lengths, temperature, seed."""
    scorers: dict[str, ScorerSpec] = field(default_factory=dict)
    """Scorers built by ``herd sample`` (name -> spec); the name keys the scores on every row."""
    safety: SafetySpec | None = None
    """The guard (None = no safety classification)."""
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    """Best-of-K and pairing rules."""
    backend: Literal["auto", "vllm", "hf"] = "auto"
    """'vllm' (offline engine in a subprocess), 'hf' (transformers generate) or 'auto'."""
    engine: VLLMEngineConfig = field(default_factory=VLLMEngineConfig)
    """vLLM engine settings (tensor_parallel_size, memory, prefix caching, request_mode)."""
    hf_batch_size: int = 16
    """Prompts per HF generate call (the HF backend only)."""
    shard_size: int = 64
    """Prompts per shard: the unit of atomic writes and of resume."""
    max_context: int | None = None
    """Context length prompts + max_new_tokens must fit (default: engine.max_model_len, else the
    model's max_position_embeddings)."""

    def __post_init__(self) -> None:
        if not self.prompt_sets:
            raise ValueError("prompt_sets is empty: name at least one prompt file")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
