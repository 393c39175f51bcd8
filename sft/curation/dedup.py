"""Semantic deduplication (Llama 3 §4.2.3): cluster dialogs, then keep greedily per cluster.

The paper clusters complete dialogs by embedding, sorts each cluster by quality x difficulty,
and walks it keeping a dialog only when its maximum cosine similarity to the dialogs already
kept in the cluster is below a threshold. Here:

* k-means (scikit-learn, k = ceil(n / cluster_size)) on unit vectors, so Euclidean k-means is
  cosine k-means; a near-duplicate pair almost always shares its nearest centroid, and what
  crosses a boundary is missed (the price of not comparing all n^2 pairs);
* the greedy walk is exact inside a cluster and runs in blocks: one matrix product compares a
  block of candidates with everything kept in earlier blocks, and a B x B product plus a running
  maximum resolves the order inside the block. Cost O(n * cluster_size * d) flops, memory
  O(cluster_size * B).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

BLOCK = 512


@dataclass
class DedupResult:
    """Which rows survive, and why the others did not."""

    keep: np.ndarray
    """Boolean mask over the input rows."""
    cluster: np.ndarray
    """k-means cluster of each row."""
    max_sim: np.ndarray
    """Each row's maximum cosine to the rows kept before it in its cluster (-1 for the first)."""
    n_clusters: int
    seconds: dict[str, float] = field(default_factory=dict)


def cluster_embeddings(emb: np.ndarray, cluster_size: int, seed: int) -> tuple[np.ndarray, int]:
    """k-means labels for unit-norm ``emb`` (n x d) with about ``cluster_size`` rows per cluster."""
    n = len(emb)
    k = max(1, math.ceil(n / cluster_size))
    if k == 1:
        return np.zeros(n, dtype=np.int64), 1
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=1, max_iter=50, random_state=seed, algorithm="lloyd")
    labels = km.fit_predict(emb)
    return labels.astype(np.int64), k


def greedy_keep(emb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Walk rows of ``emb`` (m x d, unit norm, already in priority order) and keep row i iff
    max_{j kept, j < i} cos(e_i, e_j) < threshold. Returns (keep mask, that max per row)."""
    m = len(emb)
    keep = np.zeros(m, dtype=bool)
    max_sim = np.full(m, -1.0, dtype=np.float32)
    kept_rows: list[np.ndarray] = []
    for start in range(0, m, BLOCK):
        block = emb[start : start + BLOCK]
        best = np.full(len(block), -1.0, dtype=np.float32)
        if kept_rows:
            best = np.maximum(best, (block @ np.concatenate(kept_rows).T).max(axis=1))
        inner = block @ block.T
        for i in range(len(block)):
            max_sim[start + i] = best[i]
            if best[i] < threshold:
                keep[start + i] = True
                # Later rows of the block now also have to be unlike row i.
                best = np.maximum(best, inner[i])
        kept_rows.append(block[keep[start : start + len(block)]])
    return keep, max_sim


def semantic_dedup(
    emb: np.ndarray, priority: np.ndarray, threshold: float, cluster_size: int, seed: int = 0
) -> DedupResult:
    """Cluster, sort each cluster by descending priority (ties: input order), keep greedily."""
    n = len(emb)
    t0 = time.perf_counter()
    labels, k = cluster_embeddings(emb, cluster_size, seed)
    t1 = time.perf_counter()
    keep = np.zeros(n, dtype=bool)
    max_sim = np.full(n, -1.0, dtype=np.float32)
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if len(members) == 0:
            continue
        order = members[np.lexsort((members, -priority[members]))]
        k_mask, sims = greedy_keep(np.ascontiguousarray(emb[order]), threshold)
        keep[order] = k_mask
        max_sim[order] = sims
    t2 = time.perf_counter()
    return DedupResult(keep, labels, max_sim, k, {"cluster": t1 - t0, "greedy_keep": t2 - t1})
