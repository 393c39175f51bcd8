"""Each eval metric on fixed inputs, against numbers worked out by hand (shown in the comments)."""

from __future__ import annotations

import math

import pytest

from herd.eval import metrics as M
from herd.eval.config import Gate
from herd.eval.gates import check_gates


def test_summary_stats_quantiles_by_hand():
    # [1..5]: mean 3; population std sqrt(((-2)²+(-1)²+0+1+4)/5) = sqrt(2);
    # linear quantile q at position q*(n-1): p10 -> 0.4 -> 1.4; p90 -> 3.6 -> 4.6.
    s = M.summary_stats([5.0, 1.0, 4.0, 2.0, 3.0], "reward", [0.1, 0.25, 0.5, 0.9])
    assert s["reward_n"] == 5
    assert s["reward_mean"] == pytest.approx(3.0)
    assert s["reward_std"] == pytest.approx(math.sqrt(2))
    assert s["reward_p10"] == pytest.approx(1.4)
    assert s["reward_p25"] == pytest.approx(2.0)
    assert s["reward_p50"] == pytest.approx(3.0)
    assert s["reward_p90"] == pytest.approx(4.6)
    assert M.quantile_key("reward", 0.025) == "reward_p2_5"
    empty = M.summary_stats([], "reward", [0.5])
    assert empty["reward_mean"] is None and empty["reward_p50"] is None


def test_wilson_interval_by_hand():
    # 7/10, z = 1.959964: denom = 1 + z²/10 = 1.384146; center = (0.7 + 0.192073)/denom = 0.644486;
    # half = z/denom * sqrt(0.7*0.3/10 + z²/400) = 1.416009 * 0.174939 = 0.247716 -> [0.3968, 0.8922]
    lo, hi = M.wilson_interval(7, 10)
    assert lo == pytest.approx(0.39677, abs=1e-4)
    assert hi == pytest.approx(0.89220, abs=1e-4)
    # 0/10: center = 0.192073/1.384146 = 0.138767 = half -> [0, 0.2775]; never below 0.
    lo, hi = M.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.27753, abs=1e-4)
    lo, hi = M.wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.27753, abs=1e-4)
    # A 90% interval is narrower than the 95% one.
    lo90, hi90 = M.wilson_interval(7, 10, confidence=0.90)
    assert lo90 > 0.39677 and hi90 < 0.89220
    assert all(math.isnan(x) for x in M.wilson_interval(0, 0))


def test_win_rate_counts_ties_apart_and_interval():
    policy = [1.0, 2.0, 0.5, 3.0, 1.0]
    baseline = [0.5, 2.05, 0.5, 1.0, 2.0]
    # margin 0.1: win, tie (|diff| 0.05), tie (equal), win, loss.
    wr = M.win_rate(policy, baseline, tie_margin=0.1)
    assert (wr.wins, wr.ties, wr.losses, wr.n) == (2, 2, 1, 5)
    assert wr.win_rate == pytest.approx(0.4)
    # Wilson 2/5: denom 1.768292, center 0.443449, half 0.325828 -> [0.1176, 0.7693]
    assert wr.ci_low == pytest.approx(0.11762, abs=1e-4)
    assert wr.ci_high == pytest.approx(0.76928, abs=1e-4)
    # Without a margin the near-tie becomes a loss; the exact tie stays a tie.
    wr0 = M.win_rate(policy, baseline)
    assert (wr0.wins, wr0.ties, wr0.losses) == (2, 1, 2)
    with pytest.raises(ValueError, match="paired"):
        M.win_rate([1.0], [1.0, 2.0])


def test_pass_at_k_unbiased_estimator():
    # 1 - C(n-c, k)/C(n, k)
    assert M.pass_at_k(5, 2, 1) == pytest.approx(0.4)  # = c/n
    assert M.pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # C(3,2)=3, C(5,2)=10
    assert M.pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)  # C(7,5)=21, C(10,5)=252
    assert M.pass_at_k(5, 4, 2) == 1.0  # fewer than k wrong samples: every k-subset has a correct one
    assert M.pass_at_k(5, 0, 3) == 0.0
    assert M.mean_pass_at_k([2, 0], n=5, k=2) == pytest.approx(0.35)
    for n in range(1, 9):  # the stable product form equals the binomial form everywhere
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert M.pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
    with pytest.raises(ValueError, match="at least k"):
        M.pass_at_k(3, 1, 4)


def test_rate_by_category():
    flags = [True, False, True, False, False]
    cats = ["a", "a", "b", "b", None]
    r = M.rate_by_category(flags, cats, "violation_rate")
    assert r["violation_rate"] == pytest.approx(0.4) and r["violation_rate_n"] == 5
    assert r["violation_rate/a"] == 0.5 and r["violation_rate_n/a"] == 2
    assert r["violation_rate/b"] == 0.5 and r["violation_rate_n/b"] == 2
    assert not any(k.endswith("/None") for k in r)


def test_ks_and_length_drift():
    # F_a - F_b at 1: 1/3 - 0; at 2: 2/3 - 1/3; at 3: 1 - 2/3; at 4: 0 -> max 1/3
    assert M.ks_statistic([1, 2, 3], [2, 3, 4]) == pytest.approx(1 / 3)
    assert M.ks_statistic([1, 2], [5, 6]) == 1.0
    assert M.ks_statistic([3, 1, 2], [1, 2, 3]) == 0.0
    lm = M.length_metrics([10, 20, 30, 40], [False, False, False, True], reference=[10, 10])
    assert lm["length_mean"] == 25 and lm["length_p50"] == 25 and lm["length_p90"] == pytest.approx(37)
    assert lm["length_truncated_rate"] == 0.25
    assert lm["length_drift"] == 15 and lm["length_drift_ratio"] == 2.5
    assert lm["length_ks"] == pytest.approx(0.75)  # at 10: F_a = 1/4, F_ref = 1
    none = M.length_metrics([5], [False], reference=None)
    assert none["length_drift"] is None and none["length_ks"] is None


def test_gates():
    gates = [
        Gate("violation_rate", max_increase=0.02, max=0.5),
        Gate("verifier_accuracy", max_decrease=0.05, min=0.1),
    ]
    prev = {"violation_rate": 0.10, "verifier_accuracy": 0.60}
    assert check_gates({"violation_rate": 0.12, "verifier_accuracy": 0.55}, prev, gates) == []  # both at the limit
    fails = check_gates({"violation_rate": 0.15, "verifier_accuracy": 0.50}, prev, gates)
    assert len(fails) == 2
    assert fails[0].startswith("violation_rate rose by 0.05 (0.1 -> 0.15)")
    assert fails[1].startswith("verifier_accuracy fell by 0.1 (0.6 -> 0.5)")
    # absolute bounds apply without a previous round; relative ones are skipped then
    fails = check_gates({"violation_rate": 0.6, "verifier_accuracy": 0.05}, None, gates)
    assert fails == ["violation_rate = 0.6 is above the ceiling 0.5", "verifier_accuracy = 0.05 is below the floor 0.1"]
    # a gate on a metric that was not computed fails loudly
    assert check_gates({"verifier_accuracy": 0.7}, prev, gates[:1]) == [
        "violation_rate: gated metric is missing from this evaluation"
    ]
