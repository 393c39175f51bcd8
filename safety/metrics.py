"""Classifier metrics: precision, recall, F1, AUPRC and FPR, overall and per category.

Per-category numbers follow the usual guard evaluation: category ``c`` is scored on the rows that
are unsafe *with c* (positives) against all safe rows (negatives), using the overall P(unsafe) —
"does the guard catch this kind of harm, and at what cost to safe traffic". AUPRC is scikit-learn's
average precision (step-wise, no interpolation), the number Meta reports for Llama Guard.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence


@dataclass
class BinaryMetrics:
    n: int
    positives: int
    precision: float
    recall: float
    f1: float
    fpr: float
    """False positive rate: safe rows flagged unsafe / safe rows (NaN without safe rows)."""
    auprc: float
    """Average precision of the scores (NaN without positives)."""

    def as_dict(self) -> dict:
        return asdict(self)


def binary_metrics(labels: Sequence[bool], scores: Sequence[float], threshold: float = 0.5) -> BinaryMetrics:
    """``labels[i]`` True = unsafe; ``scores[i]`` = P(unsafe); predicted unsafe iff score >= threshold."""
    from sklearn.metrics import average_precision_score

    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    y = [bool(v) for v in labels]
    pred = [s >= threshold for s in scores]
    tp = sum(a and b for a, b in zip(y, pred))
    fp = sum((not a) and b for a, b in zip(y, pred))
    fn = sum(a and not b for a, b in zip(y, pred))
    tn = sum((not a) and not b for a, b in zip(y, pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    fpr = fp / (fp + tn) if fp + tn else math.nan
    auprc = float(average_precision_score(y, list(scores))) if any(y) else math.nan
    return BinaryMetrics(len(y), tp + fn, precision, recall, f1, fpr, auprc)


def per_category_metrics(
    label_codes: Sequence[Sequence[str]], scores: Sequence[float], threshold: float = 0.5, codes: Sequence[str] | None = None
) -> dict[str, BinaryMetrics]:
    """``label_codes[i]`` = violated codes of row i (empty = safe). One entry per code present."""
    present = codes or sorted({c for cs in label_codes for c in cs}, key=lambda s: (len(s), s))
    safe_rows = [i for i, cs in enumerate(label_codes) if not cs]
    out = {}
    for code in present:
        rows = safe_rows + [i for i, cs in enumerate(label_codes) if code in cs]
        if len(rows) == len(safe_rows):
            continue
        out[code] = binary_metrics([bool(label_codes[i]) for i in rows], [scores[i] for i in rows], threshold)
    return out


def category_accuracy(label_codes: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """Among truly unsafe rows, the share whose predicted codes include a true code (NaN if none)."""
    rows = [(set(t), set(p)) for t, p in zip(label_codes, predicted) if t]
    return sum(bool(t & p) for t, p in rows) / len(rows) if rows else math.nan


def evaluate(label_codes: Sequence[Sequence[str]], scores: Sequence[float], predicted: Sequence[Sequence[str]] | None = None, threshold: float = 0.5) -> dict:
    """Everything above in one JSON-ready dict."""
    report = {
        "overall": binary_metrics([bool(c) for c in label_codes], scores, threshold).as_dict(),
        "per_category": {k: v.as_dict() for k, v in per_category_metrics(label_codes, scores, threshold).items()},
        "threshold": threshold,
    }
    if predicted is not None:
        report["category_accuracy"] = category_accuracy(label_codes, predicted)
    return report
