"""SFT data curation (Llama 3 §4.2.3): rule-based cleaning, quality and difficulty scores,
semantic deduplication. ``curate(cfg, rows)`` runs it in memory; ``write_curated`` stores the
result; ``herd curate --config X.yaml`` does both for a file."""

from herd.sft.curation.config import (
    ApologyRule,
    CurationConfig,
    DedupConfig,
    DifficultyConfig,
    EmptyRule,
    ExpressivenessRule,
    JudgeConfig,
    LanguageRule,
    QualityConfig,
    RulesConfig,
    TruncationRule,
)
from herd.sft.curation.language import detect_language
from herd.sft.curation.output import write_curated
from herd.sft.curation.pipeline import CurationResult, curate
from herd.sft.curation.rows import CurationInputError, read_rows
from herd.sft.curation.rules import RuleCount

__all__ = [
    "ApologyRule", "CurationConfig", "CurationInputError", "CurationResult", "DedupConfig",
    "DifficultyConfig", "EmptyRule", "ExpressivenessRule", "JudgeConfig", "LanguageRule",
    "QualityConfig", "RuleCount", "RulesConfig", "TruncationRule", "curate", "detect_language",
    "read_rows", "write_curated",
]
