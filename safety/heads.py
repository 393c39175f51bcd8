"""Linear heads on frozen sentence embeddings, stored as small ``.npz`` files.

Both shipped classifiers (the embedding guard and the refusal detector) are logistic regressions
on top of the encoder: training is seconds on a CPU, inference is a matrix product, and the
weights are a few hundred kB that ship inside the package. Training uses scikit-learn's L-BFGS
logistic regression (deterministic), inference plain numpy so loading needs no scikit-learn.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from herd.core.artifacts import atomic_write_bytes


@dataclass
class LinearHeads:
    """``k`` independent logistic heads: ``p = sigmoid(x @ W.T + b)``."""

    weight: np.ndarray
    """(k, d) float32."""
    bias: np.ndarray
    """(k,) float32."""
    names: list[str]
    """One name per head (``"unsafe"``, ``"S1"``...)."""
    meta: dict = field(default_factory=dict)
    """How they were trained (data hash, regularisation, encoder), saved alongside."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(n, d) -> (n, k) probabilities."""
        z = features.astype(np.float32) @ self.weight.T + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def column(self, name: str) -> int:
        return self.names.index(name)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf, weight=self.weight.astype(np.float32), bias=self.bias.astype(np.float32),
            names=np.array(self.names), meta=np.array(json.dumps(self.meta, sort_keys=True)),
        )
        return buf.getvalue()

    def save(self, path: Path | str) -> Path:
        return atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: Path | str) -> "LinearHeads":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["weight"], z["bias"], [str(n) for n in z["names"]], json.loads(str(z["meta"])))


def fit_logistic(features: np.ndarray, labels: np.ndarray, c: float = 4.0) -> tuple[np.ndarray, float]:
    """One balanced L2 logistic regression; returns ``(w (d,), b)``.

    ``class_weight='balanced'`` because the labelled sets are not 50/50 and a guard's threshold
    should sit where the classes cross, not where the majority class wins.
    """
    from sklearn.linear_model import LogisticRegression

    if len(set(labels.tolist())) < 2:
        raise ValueError("a head needs examples of both classes")
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    clf.fit(features.astype(np.float64), labels.astype(int))
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])


def fit_heads(features: np.ndarray, label_sets: dict[str, tuple[np.ndarray, np.ndarray]], c: float, meta: dict) -> LinearHeads:
    """Fit one head per name on its own rows: ``{name: (row_index, labels)}``."""
    weights, biases = [], []
    for name, (rows, y) in label_sets.items():
        w, b = fit_logistic(features[rows], y, c)
        weights.append(w)
        biases.append(b)
    return LinearHeads(np.stack(weights), np.array(biases, dtype=np.float32), list(label_sets), dict(meta, c=c))
