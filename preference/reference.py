"""Is the model that sampled the pairs the DPO reference model?

Only then may the sampler's recorded log-probs stand in for the reference forward pass. Paths
are compared first (cheap); two different paths count as the same model when their weights and
config hash identically (a copied checkpoint), so a round that moved a directory still reuses.
"""

from __future__ import annotations

import functools
from pathlib import Path

from herd.core.artifacts import hash_file
from herd.preference.data import PreferencePair

_WEIGHT_FILES = ("config.json", "*.safetensors", "*.bin")


@functools.lru_cache(maxsize=8)
def model_fingerprint(path: str) -> str:
    """Hash of a checkpoint's config and weight files (tokenizer and metadata excluded)."""
    p = Path(path)
    if not p.is_dir():
        return f"id:{path}"  # a hub id: only the name can be compared
    parts = []
    for pattern in _WEIGHT_FILES:
        for f in sorted(p.glob(pattern)):
            parts.append(f"{f.name}:{hash_file(f)}")
    return "|".join(parts)


def same_model(a: str, b: str) -> bool:
    if Path(a).resolve() == Path(b).resolve():
        return True
    return model_fingerprint(str(Path(a).resolve())) == model_fingerprint(str(Path(b).resolve()))


def sampler_is_reference(pairs: list[PreferencePair], reference_path: str) -> bool:
    """True when every pair names a sampler and each of them is the reference model."""
    samplers = {p.sampler.get("sampler_model") for p in pairs}
    if None in samplers or not samplers:
        return False
    return all(same_model(str(s), reference_path) for s in samplers)
