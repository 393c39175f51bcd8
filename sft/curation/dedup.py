"""Semantic deduplication (Llama 3 §4.2.3): cluster dialogs, then keep greedily per cluster.

The paper clusters complete dialogs by embedding, sorts each cluster by quality x difficulty,
and walks it keeping a dialog only when its maximum cosine similarity to the dialogs already
kept in the cluster is below a threshold. Here:

* spherical k-means (k = ceil(n / cluster_size)), fitted on a sample and assigning every row by
  one matrix product: it only has to bucket rows, so a few matmul iterations do (scikit-learn's
  KMeans took 250 s wall for 100k rows on the shared 2-core CPU, most of it thread spinning);
* the greedy walk is exact inside a cluster and runs in blocks: one matrix product compares a
  block of candidates with everything kept in earlier blocks, and a B x B product plus a running
  maximum resolves the order inside the block. Cost O(n * cluster_size * d) flops;
* a near-duplicate pair that straddles a cluster boundary is missed by one partition (about 2%
  of planted duplicates at 100k rows, 50 clusters), so ``passes`` > 1 re-partitions the
  survivors with another seed and walks again: a pair is missed only when every partition
  splits it. With one cluster the walk is already exact and runs once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

BLOCK = 512
#: Rows per centroid used to fit k-means (the assignment then covers every row).
FIT_ROWS_PER_CLUSTER = 256


@dataclass
class DedupResult:
    """Which rows survive, and why the others did not."""

    keep: np.ndarray
    """Boolean mask over the input rows."""
    cluster: np.ndarray
    """Cluster of each row in the first partition."""
    max_sim: np.ndarray
    """Kept rows: the largest cosine to an earlier kept row of their cluster over all passes
    (-1 when always first). Dropped rows: the cosine that dropped them (>= threshold)."""
    n_clusters: int
    seconds: dict[str, float] = field(default_factory=dict)


def _assign(emb: np.ndarray, centroids: np.ndarray, block: int = 8192) -> np.ndarray:
    return np.concatenate(
        [np.argmax(emb[s : s + block] @ centroids.T, axis=1) for s in range(0, len(emb), block)]
    )


def spherical_kmeans(emb: np.ndarray, k: int, seed: int, iters: int = 15) -> np.ndarray:
    """Labels of unit-norm ``emb`` (n x d) under k centroids fitted on a seeded sample.

    Centroids start at random sample rows; an emptied centroid restarts at the sample row
    least similar to its own centroid, so all k stay in use.
    """
    rng = np.random.default_rng(seed)
    n = len(emb)
    fit = emb[rng.choice(n, size=min(n, FIT_ROWS_PER_CLUSTER * k), replace=False)]
    centroids = fit[rng.choice(len(fit), size=k, replace=False)].copy()
    for _ in range(iters):
        sims = fit @ centroids.T
        labels = np.argmax(sims, axis=1)
        onehot = np.zeros((len(fit), k), dtype=fit.dtype)
        onehot[np.arange(len(fit)), labels] = 1.0
        sums = onehot.T @ fit
        norms = np.linalg.norm(sums, axis=1)
        empty = norms == 0
        if empty.any():
            worst = np.argsort(sims[np.arange(len(fit)), labels])[: int(empty.sum())]
            sums[empty], norms[empty] = fit[worst], 1.0
        centroids = (sums / norms[:, None]).astype(emb.dtype)
    return _assign(emb, centroids)


def cluster_embeddings(emb: np.ndarray, cluster_size: int, seed: int) -> tuple[np.ndarray, int]:
    """Cluster labels for unit-norm ``emb`` with about ``cluster_size`` rows per cluster."""
    k = max(1, math.ceil(len(emb) / cluster_size))
    if k == 1:
        return np.zeros(len(emb), dtype=np.int64), 1
    return spherical_kmeans(emb, k, seed).astype(np.int64), k


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


def _walk_clusters(emb, rows, labels, k, priority, threshold, keep, max_sim) -> None:
    """One pass: greedy keep inside each cluster of ``rows``; updates keep/max_sim in place."""
    for c in range(k):
        members = rows[labels == c]
        if len(members) == 0:
            continue
        order = members[np.lexsort((members, -priority[members]))]
        k_mask, sims = greedy_keep(np.ascontiguousarray(emb[order]), threshold)
        keep[order[~k_mask]] = False
        dropped, kept = order[~k_mask], order[k_mask]
        max_sim[dropped] = sims[~k_mask]
        max_sim[kept] = np.maximum(max_sim[kept], sims[k_mask])


def semantic_dedup(
    emb: np.ndarray, priority: np.ndarray, threshold: float, cluster_size: int, seed: int = 0, passes: int = 2
) -> DedupResult:
    """Cluster, sort each cluster by descending priority (ties: input order), keep greedily;
    repeat on the survivors with a new partition, ``passes`` times in all."""
    n = len(emb)
    keep = np.ones(n, dtype=bool)
    max_sim = np.full(n, -1.0, dtype=np.float32)
    first_labels, first_k = np.zeros(n, dtype=np.int64), 1
    seconds = {"cluster": 0.0, "greedy_keep": 0.0}
    for p in range(passes):
        rows = np.flatnonzero(keep)
        t0 = time.perf_counter()
        labels, k = cluster_embeddings(emb[rows], cluster_size, seed + p)
        t1 = time.perf_counter()
        _walk_clusters(emb, rows, labels, k, priority, threshold, keep, max_sim)
        seconds["cluster"] += t1 - t0
        seconds["greedy_keep"] += time.perf_counter() - t1
        if p == 0:
            first_labels[rows], first_k = labels, k
        if k == 1:  # one cluster: the walk was exact, another pass changes nothing
            break
    return DedupResult(keep, first_labels, max_sim, first_k, seconds)
