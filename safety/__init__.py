"""herd.safety: a Llama-Guard-style safety classifier library, guard training, dataset filtering
and refusal detection. Usable on its own (``from herd.safety import ...``) and by the loop through
the herd.core.scoring protocols (``SafetyJudge``, ``RefusalJudge``).

Heavy dependencies (torch, transformers, the encoder) load when a classifier is built, not here.
"""

from __future__ import annotations

from pathlib import Path

from herd.core.scoring import RefusalVerdict, Verdict
from herd.safety.base import SafetyClassifier, error_verdict
from herd.safety.cascade import CascadeClassifier
from herd.safety.filtering import FilterConfig, FilterResult, filter_dataset
from herd.safety.rendering import GUARD_CHAT_TEMPLATE, render_guard_prompt
from herd.safety.taxonomy import LLAMA_GUARD_3_CATEGORIES, Category, Policy, PolicyError
from herd.safety.verdicts import ParsedVerdict, format_verdict, parse_verdict


def __getattr__(name: str):
    # Classifier classes import numpy/torch/transformers: load them on first use.
    if name in ("EmbeddingGuard",):
        from herd.safety.embedding_guard import EmbeddingGuard

        return EmbeddingGuard
    if name in ("GuardClassifier",):
        from herd.safety.guard import GuardClassifier

        return GuardClassifier
    if name in ("RefusalDetector", "KeywordRefusalDetector"):
        from herd.safety import refusal

        return getattr(refusal, name)
    raise AttributeError(f"module 'herd.safety' has no attribute {name!r}")


def load_classifier(spec: str | None = None, **kwargs) -> SafetyClassifier:
    """Build a classifier from a short spec.

    * ``None`` or ``"embedding"``: the shipped :class:`EmbeddingGuard`;
    * a ``.npz`` file: an EmbeddingGuard with those heads;
    * a model directory: a :class:`GuardClassifier` on that checkpoint (e.g. Llama-Guard-3-8B);
    * ``"cascade:DIR"``: the shipped embedding guard in front of a GuardClassifier on DIR.

    ``kwargs`` go to the classifier (``policy``, ``threshold``, ``backend``, ``form``...).
    """
    from herd.safety.embedding_guard import EmbeddingGuard
    from herd.safety.guard import GuardClassifier

    if spec is None or spec == "embedding":
        return EmbeddingGuard(**kwargs)
    if spec.startswith("cascade:"):
        policy = kwargs.get("policy")
        return CascadeClassifier(EmbeddingGuard(policy=policy), GuardClassifier(spec[len("cascade:"):], **kwargs))
    path = Path(spec)
    if path.suffix == ".npz" and path.is_file():
        return EmbeddingGuard(weights=path, **kwargs)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{spec}: not a model directory (no config.json)")
        return GuardClassifier(str(path), **kwargs)
    raise FileNotFoundError(f"{spec}: no such guard (expected 'embedding', a .npz head file, a model directory or 'cascade:DIR')")


__all__ = [
    "CascadeClassifier", "Category", "EmbeddingGuard", "FilterConfig", "FilterResult", "GUARD_CHAT_TEMPLATE",
    "GuardClassifier", "KeywordRefusalDetector", "LLAMA_GUARD_3_CATEGORIES", "ParsedVerdict", "Policy",
    "PolicyError", "RefusalDetector", "RefusalVerdict", "SafetyClassifier", "Verdict", "error_verdict",
    "filter_dataset", "format_verdict", "load_classifier", "parse_verdict", "render_guard_prompt",
]
