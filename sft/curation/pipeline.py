"""The curation run: rules -> quality -> difficulty -> semantic dedup (Llama 3 §4.2.3).

``curate`` is what the round runner calls between rejection sampling and SFT. It works on rows in
memory and returns them with their score columns; :func:`herd.sft.curation.output.write_curated`
puts the result on disk. Scorers and the judge backend are passed in (a stage never builds
another stage's models): any :class:`herd.core.scoring.Scorer` gives the quality score.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from herd.core.generation import GenerationBackend
from herd.core.scoring import Scorer
from herd.sft.curation.config import CurationConfig
from herd.sft.curation.intentions import count_intentions
from herd.sft.curation.judge import DIFFICULTY_RUBRIC, QUALITY_RUBRIC, judge_scores
from herd.sft.curation.rows import dialog_text, read_rows, validate_rows
from herd.sft.curation.rules import RuleCount, apply_rules, record_step
from herd.sft.curation.scores import combine_quality, difficulty_norm

log = logging.getLogger(__name__)


@dataclass
class CurationResult:
    """Kept rows (input columns + score columns), per-step counts, distributions and a summary."""

    rows: list[dict]
    counts: list[RuleCount]
    """One entry per step that can remove rows, in order; rows_in of each = rows_out of the last."""
    summary: dict[str, Any]
    distributions: dict[str, list[float]] = field(default_factory=dict)
    """Score lists over every row that reached the scoring step (for the histograms)."""
    removed: list[dict] = field(default_factory=list)
    """Dropped rows with a ``removed_by`` column naming the step (and their scores so far), so a
    user can read what each rule took out."""

    @property
    def rows_in(self) -> int:
        return self.summary["rows_in"]


def _need_backend(backend: GenerationBackend | None, what: str) -> GenerationBackend:
    if backend is None:
        raise ValueError(f"{what} is switched on but no judge backend was given (set judge.model)")
    return backend


def _score_quality(cfg: CurationConfig, rows: list[dict], scorer: Scorer | None, backend) -> dict:
    rm = None
    if scorer is not None and rows:
        rm = [float(s) for s in scorer.score([r["messages"] for r in rows])]
        if len(rm) != len(rows):
            raise ValueError(f"quality scorer returned {len(rm)} scores for {len(rows)} rows")
    judge = None
    if cfg.quality.judge:
        judge = judge_scores(_need_backend(backend, "quality.judge"), rows, QUALITY_RUBRIC,
                             cfg.judge.max_new_tokens, cfg.judge.max_dialog_chars)
    q = combine_quality(rm, judge, cfg.quality.rm_top_fraction) if (rm is not None or judge is not None) else None
    for i, row in enumerate(rows):
        row["quality_norm"] = q.norm[i] if q else 1.0
        if rm is not None:
            row["rm_score"], row["rm_high_quality"] = q.rm_score[i], q.rm_high[i]
        if judge is not None:
            row["judge_quality"], row["judge_high_quality"] = q.judge[i], q.judge_high[i]
        if q is not None:
            row["high_quality"] = q.high_quality[i]
    return {
        "rm_threshold": q.rm_threshold if q else None,
        "rm_high": sum(q.rm_high) if q and q.rm_high is not None else None,
        "judge_high": sum(q.judge_high) if q and q.judge_high is not None else None,
        "judge_unparsed": sum(s is None for s in judge) if judge is not None else None,
        "high_quality": sum(q.high_quality) if q else None,
        "rm_scores": rm or [],
        "judge_scores": [s for s in (judge or []) if s is not None],
    }


def _score_difficulty(cfg: CurationConfig, rows: list[dict], backend) -> dict:
    intents = [count_intentions(r) for r in rows]
    judge = None
    if cfg.difficulty.judge:
        judge = judge_scores(_need_backend(backend, "difficulty.judge"), rows, DIFFICULTY_RUBRIC,
                             cfg.judge.max_new_tokens, cfg.judge.max_dialog_chars)
    norm = difficulty_norm(intents, judge, cfg.difficulty.intention_cap)
    for i, row in enumerate(rows):
        row["intentions"] = intents[i]
        row["difficulty_norm"] = norm[i]
        if judge is not None:
            row["judge_difficulty"] = judge[i]
        row["priority"] = row["quality_norm"] * norm[i]
    return {
        "intentions_mean": float(np.mean(intents)) if intents else None,
        "judge_unparsed": sum(s is None for s in judge) if judge is not None else None,
        "intentions": intents,
        "judge_scores": [s for s in (judge or []) if s is not None],
    }


def _dedup(cfg: CurationConfig, rows: list[dict]) -> tuple[list[dict], dict]:
    from herd.sft.curation.dedup import semantic_dedup
    from herd.sft.curation.embed import DialogEncoder, embed_texts

    t0 = time.perf_counter()
    encoder = DialogEncoder(cfg.dedup)
    emb = embed_texts([dialog_text(r) for r in rows], encoder, cfg.dedup)
    embed_s = time.perf_counter() - t0
    priority = np.array([r["priority"] for r in rows], dtype=np.float64)
    res = semantic_dedup(emb, priority, cfg.dedup.threshold, cfg.dedup.cluster_size, cfg.dedup.seed, cfg.dedup.passes)
    for i, row in enumerate(rows):
        row["dedup_cluster"] = int(res.cluster[i])
        row["dedup_max_sim"] = round(float(res.max_sim[i]), 6)
    kept = [r for r, k in zip(rows, res.keep) if k]
    info = {"clusters": res.n_clusters, "passes": cfg.dedup.passes, "threshold": cfg.dedup.threshold, "encoder": encoder.path,
            "seconds": {"embed": embed_s, **res.seconds}, "max_sim": [float(s) for s in res.max_sim]}
    return kept, info


def curate(
    cfg: CurationConfig,
    rows: list[dict] | str | Path,
    quality_scorer: Scorer | None = None,
    judge_backend: GenerationBackend | None = None,
) -> CurationResult:
    """Clean, score and deduplicate chat rows; see the module docstring for the order of steps."""
    t_start = time.perf_counter()
    if isinstance(rows, (str, Path)):
        rows = read_rows(rows, cfg.input_format)
    else:
        validate_rows(rows)
    n_in = len(rows)
    work = [dict(r) for r in rows]  # the caller's rows are never modified
    removed: list[dict] = []
    work, counts = apply_rules(work, cfg.rules, removed)
    quality = _score_quality(cfg, work, quality_scorer, judge_backend)
    if cfg.quality.filter and quality["high_quality"] is not None:
        before, work = work, [r for r in work if r["high_quality"]]
        record_step("quality_filter", before, work, counts, removed)
    difficulty = _score_difficulty(cfg, work, judge_backend)
    dedup: dict[str, Any] = {}
    if cfg.dedup.enabled and work:
        before = work
        work, dedup = _dedup(cfg, work)
        record_step("semantic_dedup", before, work, counts, removed)
    distributions = {
        "rm_score": quality.pop("rm_scores"), "judge_quality": quality.pop("judge_scores"),
        "intentions": difficulty.pop("intentions"), "judge_difficulty": difficulty.pop("judge_scores"),
        "dedup_max_sim": dedup.pop("max_sim", []),
    }
    summary = {
        "rows_in": n_in, "rows_out": len(work),
        "steps": [{"step": c.rule, "rows_in": c.rows_in, "rows_out": c.rows_out, "removed": c.removed} for c in counts],
        "quality": quality, "difficulty": difficulty, "dedup": dedup,
        "seconds_total": time.perf_counter() - t_start,
    }
    log.info("curation: %d rows in, %d out", n_in, len(work))
    return CurationResult(work, counts, summary, distributions, removed)
