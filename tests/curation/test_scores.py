"""Quality/difficulty scores: the OR-combination by hand, columns stored, the quality filter,
the real reward-model scorer and a judge through the real HF generation backend."""

from __future__ import annotations

import numpy as np
import pytest

from herd.core.generation import Sample
from herd.sft.curation import CurationConfig, curate
from herd.sft.curation.config import DedupConfig, DifficultyConfig, JudgeConfig, QualityConfig
from herd.sft.curation.judge import QUALITY_RUBRIC, judge_prompt, parse_score
from herd.sft.curation.scores import combine_quality, difficulty_norm, percentile_ranks
from herd.sft.curation.rows import dialog_text
from tests.curation.helpers import chat, hh_rows


def test_or_combination_by_hand():
    rm = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    judge = [3, None, 1, 2, 3, 1, 1, 2]
    q = combine_quality(rm, judge, top_fraction=0.25)
    assert q.rm_threshold == pytest.approx(6.25)  # 75th percentile, linear interpolation
    assert [i for i, h in enumerate(q.rm_high) if h] == [6, 7]
    assert [i for i, h in enumerate(q.judge_high) if h] == [0, 4]
    assert [i for i, h in enumerate(q.high_quality) if h] == [0, 4, 6, 7]
    # Quality factor: mean of RM percentile (rank/8) and judge/3; an unparsed judge adds nothing.
    assert q.norm[0] == pytest.approx((1 / 8 + 3 / 3) / 2)
    assert q.norm[1] == pytest.approx(2 / 8)
    assert q.norm[7] == pytest.approx((8 / 8 + 2 / 3) / 2)
    only_rm = combine_quality(rm, None)
    assert only_rm.judge_high is None and only_rm.high_quality == only_rm.rm_high
    only_judge = combine_quality(None, judge)
    assert only_judge.rm_high is None and only_judge.high_quality == only_judge.judge_high
    with pytest.raises(ValueError, match="non-finite score for row 1"):
        combine_quality([0.0, float("nan")], None)


def test_percentile_ranks_share_ties_and_difficulty_factor():
    np.testing.assert_allclose(percentile_ranks([5.0, 1.0, 5.0, 3.0]), [3.5 / 4, 1 / 4, 3.5 / 4, 2 / 4])
    assert difficulty_norm([0, 1, 3, 9], None, cap=5) == pytest.approx([0.2, 0.2, 0.6, 1.0])
    assert difficulty_norm([3, 3], [3, None], cap=5) == pytest.approx([(0.6 + 1.0) / 2, 0.6])


def test_parse_score():
    assert parse_score("Clear and accurate.\nScore: 3") == 3
    assert parse_score("score = 2") == 2
    assert parse_score("Score: 1 at first, but on reflection Score: **2**") == 2
    assert parse_score("2") == 2
    assert parse_score("Score: 5") is None
    assert parse_score("I would rate this highly.") is None
    prompt = judge_prompt(QUALITY_RUBRIC, chat("q", "a" * 100)["messages"], max_chars=60)
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n")
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert "[... middle omitted ...]" in prompt


class TableScorer:
    name = "table"

    def __init__(self, table):
        self.table = table

    def score(self, conversations, metadata=None):
        return [self.table[c[0]["content"]] for c in conversations]


class RubricBackend:
    """A GenerationBackend standing in for a Llama 3 judge (no such checkpoint runs here): it
    answers each rubric prompt with a fixed score per user question found in the prompt."""

    def __init__(self, quality: dict[str, int], difficulty: dict[str, int]):
        self.quality, self.difficulty, self.calls = quality, difficulty, []

    def generate(self, prompts, spec, prompt_keys=None):
        assert spec.temperature == 0.0 and spec.n == 1
        self.calls.append(len(prompts))
        out = []
        for p in prompts:
            table = self.quality if "accuracy, instruction following" in p else self.difficulty
            key = next(k for k in table if f"[USER]\n{k}\n" in p)
            out.append([Sample(text=f"Fine.\nScore: {table[key]}", token_ids=[], logprobs=[], finish_reason="stop")])
        return out

    def close(self):
        pass


def test_curate_stores_scores_and_filters_by_or():
    questions = [f"question {i}?" for i in range(8)]
    rows = [chat(q, f"Answer number {i} is here.") for i, q in enumerate(questions)]
    rm = TableScorer({q: float(i) for i, q in enumerate(questions)})  # rows 6, 7: top quartile
    backend = RubricBackend(
        quality={q: (3 if i == 1 else 2) for i, q in enumerate(questions)},  # row 1: judge max
        difficulty={q: 1 + i % 3 for i, q in enumerate(questions)},
    )
    cfg = CurationConfig(quality=QualityConfig(judge=True), difficulty=DifficultyConfig(judge=True),
                         dedup=DedupConfig(enabled=False))
    result = curate(cfg, rows, quality_scorer=rm, judge_backend=backend)
    kept = {r["messages"][0]["content"]: r for r in result.rows}
    assert sorted(kept) == [questions[1], questions[6], questions[7]]
    assert result.summary["steps"][-1] == {"step": "quality_filter", "rows_in": 8, "rows_out": 3, "removed": 5}
    q = result.summary["quality"]
    assert (q["rm_high"], q["judge_high"], q["high_quality"], q["judge_unparsed"]) == (2, 1, 3, 0)
    r1 = kept[questions[1]]
    assert (r1["rm_score"], r1["rm_high_quality"], r1["judge_quality"], r1["judge_high_quality"]) == (1.0, False, 3, True)
    assert r1["high_quality"] is True and r1["judge_difficulty"] == 2 and r1["intentions"] == 1
    assert r1["priority"] == pytest.approx(r1["quality_norm"] * r1["difficulty_norm"])
    assert backend.calls == [8, 3]  # difficulty is judged only on rows that passed quality
    assert "rm_score" not in rows[0]  # the caller's rows are untouched


def test_no_quality_signal_filters_nothing():
    rows = [chat(f"q{i}", "fine answer.") for i in range(4)]
    result = curate(CurationConfig(dedup=DedupConfig(enabled=False)), rows)
    assert len(result.rows) == 4 and "high_quality" not in result.rows[0]
    assert [s["step"] for s in result.summary["steps"]] == ["empty", "truncated", "excessive_emoji_or_exclamation", "apology_balance"]


def test_judge_switched_on_without_backend_is_a_clear_error():
    cfg = CurationConfig(quality=QualityConfig(judge=True), dedup=DedupConfig(enabled=False))
    with pytest.raises(ValueError, match="quality.judge is switched on but no judge backend"):
        curate(cfg, [chat("q", "a.")])


@pytest.fixture(scope="module")
def reward_scorer(tiny_kit):
    from herd.core.reward_scoring import RewardModelScorer

    return RewardModelScorer(tiny_kit["reward"], batch_size=8, max_length=256)


def test_real_reward_model_top_quartile_and_real_hf_judge(tiny_kit, reward_scorer):
    """The tiny reward model scores real HH rows; the tiny policy, asked the rubric through the
    HF backend, answers noise, which must be recorded as unparsed and leave the RM decision."""
    from herd.core.generation import make_backend

    rows = hh_rows(12)
    expected = reward_scorer.score([r["messages"] for r in rows])
    judge = make_backend("hf", str(tiny_kit["policy"]), batch_size=12)
    cfg = CurationConfig(quality=QualityConfig(judge=True), dedup=DedupConfig(enabled=False),
                         judge=JudgeConfig(max_new_tokens=4, max_dialog_chars=400))
    cfg.rules.apology.enabled = False
    result = curate(cfg, rows, quality_scorer=reward_scorer, judge_backend=judge)
    threshold = float(np.quantile(expected, 0.75))
    assert result.summary["quality"]["rm_threshold"] == pytest.approx(threshold)
    assert result.summary["quality"]["judge_unparsed"] == 12
    want = {dialog_text(r) for r, s in zip(rows, expected) if s >= threshold}
    assert {dialog_text(r) for r in result.rows} == want and len(want) == 3
    by_text = {dialog_text(r): s for r, s in zip(rows, expected)}
    for r in result.rows:
        assert r["rm_score"] == pytest.approx(by_text[dialog_text(r)], abs=1e-5)
        assert r["judge_quality"] is None and r["rm_high_quality"] is True
