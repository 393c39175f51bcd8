"""Semantic dedup: the blocked, clustered greedy keep against a brute-force oracle, and planted
paraphrase duplicates of real HH-RLHF dialogs found with the real all-MiniLM-L6-v2 encoder."""

from __future__ import annotations

import numpy as np
import pytest

from herd.sft.curation import CurationConfig, curate
from herd.sft.curation.config import ApologyRule, DedupConfig, EmptyRule, ExpressivenessRule, QualityConfig, RulesConfig, TruncationRule
from herd.sft.curation.dedup import BLOCK, greedy_keep, semantic_dedup, spherical_kmeans
from herd.sft.curation.embed import DialogEncoder, embed_texts
from herd.sft.curation.paraphrase import paraphrase_messages
from herd.sft.curation.rows import dialog_text
from tests.curation.helpers import hh_rows


def oracle_keep(emb: np.ndarray, threshold: float) -> np.ndarray:
    """The paper's rule written the obvious way: compare each row with every row kept so far."""
    mask = np.zeros(len(emb), dtype=bool)
    for i in range(len(emb)):
        kept = emb[mask]
        mask[i] = len(kept) == 0 or float((kept @ emb[i]).max()) < threshold
    return mask


def planted(n_distinct: int, n_dups: int, dim: int, seed: int, noise: float = 0.15, topics: int = 0):
    """Unit vectors (around ``topics`` centres when > 0, as text embeddings are) plus noisy
    copies of some of them (cos about 0.99 for noise 0.15 in 64-d)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n_distinct, dim))
    if topics:
        centres = rng.standard_normal((topics, dim))
        base += centres[rng.integers(0, topics, n_distinct)]
    src = rng.integers(0, n_distinct, n_dups)
    dups = base[src] + noise * rng.standard_normal((n_dups, dim))
    emb = np.concatenate([base, dups]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb, src


@pytest.mark.parametrize("seed", [0, 1])
def test_blocked_greedy_keep_equals_the_oracle_across_blocks(seed):
    emb, _ = planted(900, 500, 32, seed)  # 1400 rows: three blocks of BLOCK=512
    assert len(emb) > 2 * BLOCK
    rng = np.random.default_rng(seed)
    emb = emb[rng.permutation(len(emb))]  # duplicates land in any block
    for threshold in (0.5, 0.9):
        keep, max_sim = greedy_keep(emb, threshold)
        np.testing.assert_array_equal(keep, oracle_keep(emb, threshold))
        # Each dropped row really has a kept, earlier row this similar.
        for i in np.flatnonzero(~keep)[:50]:
            earlier = np.flatnonzero(keep[:i])
            assert np.isclose(max_sim[i], (emb[earlier] @ emb[i]).max(), atol=1e-5)
            assert max_sim[i] >= threshold


def test_clustered_dedup_removes_planted_duplicates_and_keeps_priority():
    # k-means splits near-duplicates only when they straddle a cluster boundary; with topical
    # structure (as real dialog embeddings have) the clusters follow the topics.
    emb, src = planted(2000, 300, 64, seed=3, topics=6)
    n = 2000
    # Duplicates get higher priority than their originals: the copy must be the one kept.
    priority = np.concatenate([np.ones(n), np.full(300, 2.0)])
    res = semantic_dedup(emb, priority, threshold=0.9, cluster_size=400, seed=0)
    assert res.n_clusters == 6
    assert not res.keep[src].any()  # every duplicated original dropped
    kept_dups = np.flatnonzero(res.keep[n:])
    # One kept row per duplicated original (copies of the same original dedup each other).
    assert len(kept_dups) == len(set(src.tolist()))
    assert res.keep[:n].sum() == n - len(set(src.tolist()))
    # Clustering changed nothing here versus the exact all-pairs greedy in priority order.
    order = np.lexsort((np.arange(len(emb)), -priority))
    exact = np.zeros(len(emb), dtype=bool)
    exact[order] = oracle_keep(emb[order], 0.9)
    np.testing.assert_array_equal(res.keep, exact)


def test_spherical_kmeans_recovers_separated_topics():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 32)) * 4
    topic = rng.integers(0, 5, 2000)
    emb = (centres[topic] + rng.standard_normal((2000, 32))).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = spherical_kmeans(emb, 5, seed=0)
    # Every cluster is one topic and every topic one cluster (labels are a relabelling).
    pairs = set(zip(labels.tolist(), topic.tolist()))
    assert len(pairs) == 5 and len({a for a, _ in pairs}) == 5


def test_second_partition_catches_pairs_split_by_a_cluster_boundary():
    # Structureless vectors are the worst case for k-means boundaries.
    emb, src = planted(3000, 400, 64, seed=3)
    prio = np.ones(len(emb))
    missed = {p: int(semantic_dedup(emb, prio, 0.9, 500, seed=0, passes=p).keep.sum()) - 3000 for p in (1, 2)}
    assert missed[1] >= 10 and missed[2] <= 2, missed


@pytest.fixture(scope="module")
def encoder():
    return DialogEncoder(DedupConfig())


def dedup_only(**dedup) -> CurationConfig:
    off = RulesConfig(
        empty=EmptyRule(enabled=False), truncated=TruncationRule(enabled=False),
        expressive=ExpressivenessRule(enabled=False), apology=ApologyRule(enabled=False),
    )
    return CurationConfig(rules=off, quality=QualityConfig(filter=False), dedup=DedupConfig(**dedup))


class TableScorer:
    """A Scorer whose scores are given per dialog (the quality signal under test is the order)."""

    name = "table"

    def __init__(self, table: dict[str, float]):
        self.table = table

    def score(self, conversations, metadata=None):
        return [self.table[dialog_text({"messages": c})] for c in conversations]


def test_planted_paraphrases_of_real_hh_rows_are_removed(encoder, tmp_path):
    originals = hh_rows(24)
    paraphrases = [
        {"messages": paraphrase_messages(r["messages"], seed=i), "paraphrase_of": r["source_line"]}
        for i, r in enumerate(originals[:10])
    ]
    # The planted copies really differ in text, yet stay close in embedding space.
    assert all(dialog_text(p) != dialog_text(o) for p, o in zip(paraphrases, originals))
    rows = originals + paraphrases
    cache = tmp_path / "cache"  # the second run below reuses these embeddings
    result = curate(dedup_only(threshold=0.9, cache_dir=cache), rows)
    kept_text = {dialog_text(r) for r in result.rows}
    assert kept_text == {dialog_text(r) for r in originals}  # ties: input order, originals first
    assert result.summary["steps"][-1] == {"step": "semantic_dedup", "rows_in": 34, "rows_out": 24, "removed": 10}
    assert all(r["dedup_max_sim"] < 0.9 for r in result.rows)

    # Give the paraphrases the better reward: now the paraphrase of each pair is the one kept.
    table = {dialog_text(r): 0.0 for r in originals} | {dialog_text(p): 1.0 for p in paraphrases}
    result = curate(dedup_only(threshold=0.9, cache_dir=cache), rows, quality_scorer=TableScorer(table))
    kept_text = {dialog_text(r) for r in result.rows}
    assert kept_text == {dialog_text(r) for r in originals[10:] + paraphrases}
    assert all("rm_score" in r and "priority" in r for r in result.rows)


def test_embedding_cache_resumes_without_re_encoding(encoder, tmp_path, monkeypatch):
    cfg = DedupConfig(cache_dir=tmp_path / "cache", chunk_rows=4)
    texts = [dialog_text(r) for r in hh_rows(10)]
    texts.append(texts[0])  # an exact duplicate is encoded once
    calls: list[int] = []
    real_encode = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda t: calls.append(len(t)) or real_encode(t))
    first = embed_texts(texts[:8], encoder, cfg)  # a run "killed" after two chunks
    assert calls == [4, 4]
    full = embed_texts(texts, encoder, cfg)
    assert calls == [4, 4, 2]  # only the new unique texts are encoded
    np.testing.assert_array_equal(full[:8], first)
    np.testing.assert_array_equal(full[10], full[0])
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    assert len(list((tmp_path / "cache").glob("emb-*.npy"))) == 3
