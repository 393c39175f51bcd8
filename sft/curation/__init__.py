"""SFT data curation (Llama 3 §4.2.3): rule-based cleaning, quality and difficulty scores,
semantic deduplication. ``curate(cfg, rows)`` runs it in memory; ``write_curated`` stores the
result; ``herd curate --config X.yaml`` does both for a file.

The run-time parts load on first use (PEP 562), so ``herd --help``, which imports this package
for its CLI module, does not pull in numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

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

_LAZY = {
    "curate": "herd.sft.curation.pipeline",
    "CurationResult": "herd.sft.curation.pipeline",
    "write_curated": "herd.sft.curation.output",
    "read_rows": "herd.sft.curation.rows",
    "CurationInputError": "herd.sft.curation.rows",
    "RuleCount": "herd.sft.curation.rules",
    "detect_language": "herd.sft.curation.language",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'herd.sft.curation' has no attribute {name!r}")


__all__ = [
    "ApologyRule", "CurationConfig", "CurationInputError", "CurationResult", "DedupConfig",
    "DifficultyConfig", "EmptyRule", "ExpressivenessRule", "JudgeConfig", "LanguageRule",
    "QualityConfig", "RuleCount", "RulesConfig", "TruncationRule", "curate", "detect_language",
    "read_rows", "write_curated",
]
