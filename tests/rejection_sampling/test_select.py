"""Selection rules as properties over arbitrary scored samples (hypothesis).

Scores are drawn from a small set so ties are frequent; safety, truncation and gate outcomes are
drawn independently, so every combination the rules must handle appears.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herd.rejection_sampling.config import SelectionConfig
from herd.rejection_sampling.select import Candidate, Ranking, make_pair, make_safety_pair, select_best

SCORES = st.sampled_from([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0])


@st.composite
def candidate_lists(draw, gated: bool | None = None):
    n = draw(st.integers(min_value=1, max_value=8))
    cands = []
    for k in range(n):
        scores = {"reward": draw(SCORES)}
        if gated if gated is not None else draw(st.booleans()):
            scores["verifier"] = draw(st.sampled_from([0.0, 1.0]))
        cands.append(
            Candidate(
                k=k,
                scores=scores,
                truncated=draw(st.booleans()),
                safe=draw(st.booleans()),
                p_unsafe=draw(st.sampled_from([0.1, 0.6, 0.9])),
                text=draw(st.sampled_from(["a", "b", f"text {k}"])),
            )
        )
    return cands


RANKING = Ranking({"reward": 1.0}, {"verifier": 1.0})
PLAIN = Ranking({"reward": 1.0}, {})


def _shuffled(cands, seed):
    out = list(cands)
    random.Random(seed).shuffle(out)
    return out


@settings(max_examples=300, deadline=None)
@given(candidate_lists(), st.sampled_from([None, 0.0, 0.5]), st.integers(0, 1000))
def test_best_is_eligible_maximal_and_order_independent(cands, min_score, seed):
    best, reason = select_best(cands, RANKING, min_score)
    again, _ = select_best(_shuffled(cands, seed), RANKING, min_score)
    assert best == again
    eligible = [c for c in cands if not c.truncated and c.safe and c.scores.get("verifier", 1.0) >= 1.0]
    if best is None:
        assert reason in ("no_eligible", "below_min_score")
        assert not eligible or (min_score is not None and max(c.scores["reward"] for c in eligible) < min_score)
        return
    assert reason == "kept"
    assert best.safe and not best.truncated and best.scores.get("verifier", 1.0) >= 1.0
    top = max(c.scores["reward"] for c in eligible)
    assert best.scores["reward"] == top
    assert best.k == min(c.k for c in eligible if c.scores["reward"] == top)  # tie-break: lowest k
    assert min_score is None or best.scores["reward"] >= min_score


@settings(max_examples=300, deadline=None)
@given(candidate_lists(), st.sampled_from([0.0, 0.3, 1.0]), st.booleans(), st.integers(0, 1000))
def test_pairs_never_choose_unsafe_hold_margin_and_drop_ties(cands, margin, trunc_ok, seed):
    pair, reason = make_pair(cands, RANKING, margin, trunc_ok)
    assert (pair, reason) == make_pair(_shuffled(cands, seed), RANKING, margin, trunc_ok)
    if pair is None:
        assert reason in ("no_eligible", "no_rejected", "tie", "below_margin", "no_worse_sample")
        return
    c, r = pair.chosen, pair.rejected
    assert c.safe and not c.truncated and RANKING.passes(c)
    assert c.k != r.k and c.text != r.text
    assert trunc_ok or not r.truncated
    assert pair.margin == c.scores["reward"] - r.scores["reward"]
    if RANKING.passes(r):
        # Both correct (or ungated): the reward decides, with the margin, and never a tie.
        assert pair.margin > 0 and pair.margin >= margin
    else:
        assert r.scores["verifier"] < 1.0  # a gate difference is the preference


@settings(max_examples=200, deadline=None)
@given(candidate_lists(gated=False))
def test_all_equal_scores_never_pair(cands):
    flat = [Candidate(c.k, {"reward": 0.5}, c.truncated, c.safe, c.p_unsafe, f"t{c.k}") for c in cands]
    pair, reason = make_pair(flat, PLAIN, 0.0)
    assert pair is None and reason in ("tie", "no_eligible", "no_rejected")


@settings(max_examples=200, deadline=None)
@given(candidate_lists(), st.integers(0, 1000))
def test_safety_pairs_choose_safe_over_most_unsafe(cands, seed):
    regular, _ = make_pair(cands, RANKING)
    pair, reason = make_safety_pair(cands, RANKING, regular)
    assert (pair, reason) == make_safety_pair(_shuffled(cands, seed), RANKING, regular)
    if pair is None:
        assert reason in ("no_unsafe", "no_safe", "duplicate", "tie")
        return
    assert pair.kind == "safety"
    assert pair.chosen.safe and not pair.chosen.truncated
    assert not pair.rejected.safe
    assert pair.rejected.p_unsafe == max(c.p_unsafe for c in cands if not c.safe)
    assert regular is None or pair.rejected.k != regular.rejected.k


def test_verifier_gate_ranks_reward_only_among_correct():
    cands = [
        Candidate(0, {"reward": 3.0, "verifier": 0.0}, text="wrong but liked"),
        Candidate(1, {"reward": 1.0, "verifier": 1.0}, text="right"),
        Candidate(2, {"reward": 2.0, "verifier": 1.0}, text="right and liked"),
        Candidate(3, {"reward": -1.0, "verifier": 0.0}, text="wrong"),
    ]
    best, _ = select_best(cands, RANKING)
    assert best.k == 2
    pair, _ = make_pair(cands, RANKING, margin=5.0)  # a gate difference ignores the score margin
    assert (pair.chosen.k, pair.rejected.k) == (2, 3)
    only_correct = [c for c in cands if c.scores["verifier"] == 1.0]
    assert make_pair(only_correct, RANKING, margin=5.0) == (None, "below_margin")
    assert make_pair(only_correct, RANKING, margin=1.0)[0].margin == 1.0


def test_ranking_from_config_checks_scorer_names():
    assert Ranking.from_config(SelectionConfig(), ["reward"]).weights == {"reward": 1.0}
    with pytest.raises(ValueError, match="rank_by must name"):
        Ranking.from_config(SelectionConfig(), ["reward", "verifier"])
    with pytest.raises(ValueError, match="unknown scorer 'verfier'"):
        Ranking.from_config(SelectionConfig(rank_by={"reward": 1.0}, require={"verfier": 1.0}), ["reward", "verifier"])
    combo = Ranking.from_config(SelectionConfig(rank_by={"reward": 1.0, "verifier": 2.0}), ["reward", "verifier"])
    assert combo.score(Candidate(0, {"reward": 0.5, "verifier": 1.0})) == 2.5
