"""EmbeddingGuard: a fast guard on frozen all-MiniLM-L6-v2 embeddings.

A logistic ``unsafe`` head and one head per S-category (trained on the unsafe rows, so each reads
as P(category | unsafe)) over the features of :func:`guard_features`. It is ~1000x cheaper than a
generative guard, which is what the cascade uses it for: it settles the clear cases and passes the
uncertain band to a :class:`~herd.safety.guard.GuardClassifier`. The heads shipped in
``safety/weights/embedding_guard.npz`` were trained by ``herd safety train-heads`` on the train
split of data/safety/guard.jsonl (herd's own data).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from herd.core.chat import ChatFormatError, Conversation
from herd.core.scoring import Verdict
from herd.safety.base import SafetyClassifier, error_verdict
from herd.safety.data import LabelledExample
from herd.safety.encoder import EMBED_DIM, ENCODER_NAME, SentenceEncoder, shared_encoder
from herd.safety.heads import LinearHeads, fit_heads
from herd.safety.rendering import guard_turns
from herd.safety.taxonomy import LLAMA_GUARD_3_CATEGORIES, Policy, PolicyError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_GUARD_WEIGHTS = WEIGHTS_DIR / "embedding_guard.npz"
FEATURES_VERSION = "last*is_prompt+last*is_response+prev_user*is_response+is_response/v2"
DEFAULT_C = 4.0


def guard_texts(conversation: Conversation) -> tuple[str, str, float]:
    """``(last turn, the user turn before it or "", 1.0 if response classification)``."""
    turns = guard_turns(conversation)
    role, last = turns[-1]
    if role == "User":
        return last, "", 0.0
    prev = next((c for r, c in reversed(turns[:-1]) if r == "User"), "")
    return last, prev, 1.0


def guard_features(encoder: SentenceEncoder, items: Sequence[tuple[str, str, float]]) -> np.ndarray:
    """(n, 3*384+1): [emb(last) if prompt classification else 0, emb(last) if response
    classification else 0, emb(prompt) if response classification else 0, is_response].

    The last turn gets separate weights for prompts and for responses (the same words mean
    different things in a request and in a reply); this beat one shared block in 5-fold grouped
    cross-validation on the train split (AUPRC 0.769 vs 0.737), which is how it was chosen.
    """
    last = encoder.encode([t[0] for t in items])
    prev = encoder.encode([t[1] for t in items]) if items else np.zeros((0, EMBED_DIM), np.float32)
    flag = np.array([[t[2]] for t in items], dtype=np.float32).reshape(len(items), 1)
    return np.hstack([last * (1.0 - flag), last * flag, prev * flag, flag])


def data_hash(examples: Sequence[LabelledExample]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        h.update(repr((ex.prompt, ex.response, ex.label, ex.violated_category_codes)).encode())
    return h.hexdigest()


def train_guard_heads(examples: Sequence[LabelledExample], encoder: SentenceEncoder | None = None, c: float = DEFAULT_C) -> LinearHeads:
    """Fit the unsafe head on every row and one category head per code on the unsafe rows."""
    encoder = encoder or shared_encoder()
    x = guard_features(encoder, [guard_texts(ex.conversation()) for ex in examples])
    y = np.array([ex.unsafe for ex in examples])
    unsafe_rows = np.flatnonzero(y)
    labels: dict[str, tuple[np.ndarray, np.ndarray]] = {"unsafe": (np.arange(len(examples)), y)}
    codes = sorted({c for ex in examples for c in ex.violated_category_codes}, key=lambda s: (len(s), s))
    for code in codes:
        labels[code] = (unsafe_rows, np.array([code in examples[i].violated_category_codes for i in unsafe_rows]))
    meta = {"encoder": ENCODER_NAME, "features": FEATURES_VERSION, "rows": len(examples), "data_sha256": data_hash(examples)}
    return fit_heads(x, labels, c, meta)


class EmbeddingGuard(SafetyClassifier):
    """Guard on sentence embeddings. ``policy`` may exclude categories (only S-codes it has heads
    for); with exclusions, P(unsafe) is scaled by the share of category mass left in the policy."""

    def __init__(
        self,
        weights: LinearHeads | Path | str | None = None,
        policy: Policy | None = None,
        threshold: float = 0.5,
        category_threshold: float = 0.5,
        fail_closed: bool = True,
        encoder: SentenceEncoder | None = None,
    ):
        self.heads = weights if isinstance(weights, LinearHeads) else LinearHeads.load(weights or SHIPPED_GUARD_WEIGHTS)
        if self.heads.meta.get("features", FEATURES_VERSION) != FEATURES_VERSION:
            raise ValueError(f"guard heads were trained on features {self.heads.meta['features']!r}; this version computes {FEATURES_VERSION!r} (retrain with herd safety train-heads)")
        self.policy = policy or Policy.llama_guard_3_8b()
        missing = [c for c in self.policy.active_codes if c not in self.heads.names]
        if missing:
            raise PolicyError(f"the embedding guard has no heads for categories {missing}; it knows {self.heads.names[1:]}")
        self.threshold = threshold
        self.category_threshold = category_threshold
        self.fail_closed = fail_closed
        self._encoder = encoder

    @property
    def encoder(self) -> SentenceEncoder:
        if self._encoder is None:
            self._encoder = shared_encoder()
        return self._encoder

    def predict(self, conversations: Sequence[Conversation]) -> tuple[list[int], np.ndarray, list[str]]:
        """``(indices that rendered, head probabilities (n_ok, k), errors per conversation)``."""
        items, ok, errors = [], [], [""] * len(conversations)
        for i, conv in enumerate(conversations):
            try:
                items.append(guard_texts(conv))
                ok.append(i)
            except (ChatFormatError, TypeError, KeyError, AttributeError) as e:
                errors[i] = f"cannot classify: {e}"
        probs = self.heads.predict(guard_features(self.encoder, items)) if items else np.zeros((0, len(self.heads.names)))
        return ok, probs, errors

    def classify(self, conversations: Sequence[Conversation]) -> list[Verdict]:
        ok, probs, errors = self.predict(conversations)
        out = [error_verdict(e, self.fail_closed) if e else None for e in errors]
        cat_cols = [self.heads.column(c) for c in self.policy.active_codes]
        all_cols = [self.heads.column(c.code) for c in LLAMA_GUARD_3_CATEGORIES if c.code in self.heads.names]
        for row, i in zip(probs, ok):
            p = float(row[self.heads.column("unsafe")])
            if self.policy.excluded:  # the share of category mass the policy still checks
                p *= float(row[cat_cols].sum() / max(row[all_cols].sum(), 1e-9))
            verdict = Verdict(safe=p < self.threshold, categories=[], p_unsafe=p)
            if not verdict.safe:
                cats = [c for c, col in zip(self.policy.active_codes, cat_cols) if row[col] >= self.category_threshold]
                verdict.categories = cats or [self.policy.active_codes[int(np.argmax(row[cat_cols]))]]
            out[i] = verdict
        return out  # type: ignore[return-value]
