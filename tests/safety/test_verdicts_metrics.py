"""Verdict parsing on real output shapes, and metrics on hand-checked inputs."""

from __future__ import annotations

import math

import pytest

from herd.safety.metrics import binary_metrics, category_accuracy, evaluate, per_category_metrics
from herd.safety.verdicts import format_verdict, parse_verdict

CODES = [f"S{i}" for i in range(1, 15)]


@pytest.mark.parametrize(
    "text, safe, cats",
    [
        ("\n\nsafe", True, []),
        ("safe", True, []),
        ("\n\nunsafe\nS11", False, ["S11"]),
        ("unsafe\nS1,S10", False, ["S1", "S10"]),
        ("  Unsafe \n s1, S10 ,S1\n", False, ["S1", "S10"]),  # case, spaces, duplicates
        ("unsafe S3", False, ["S3"]),  # codes on the first line
        ("unsafe\nS99,S2", False, ["S2"]),  # unknown code dropped
        ("unsafe", False, []),
        ("\n\nsafe.\nS1", True, []),  # a safe verdict has no categories
        ("", None, []),
        ("I think this is fine", None, []),
        ("safety first", None, []),  # 'safety' is not 'safe'
        ("<|eot_id|>", None, []),
    ],
)
def test_parse_verdict(text, safe, cats):
    v = parse_verdict(text, CODES)
    assert (v.safe, v.categories) == (safe, cats)


def test_parse_without_codes_and_format_round_trip():
    assert parse_verdict("unsafe\no1,O3").categories == ["O1", "O3"]
    assert format_verdict([]) == "safe"
    assert format_verdict(["S1", "S10"]) == "unsafe\nS1,S10"
    assert parse_verdict("\n\n" + format_verdict(["S1", "S10"]), CODES).categories == ["S1", "S10"]


def test_binary_metrics_hand_checked():
    # Ranked: 0.9 (pos), 0.6 (neg), 0.4 (pos), 0.1 (neg). At 0.5: TP=1 FP=1 FN=1 TN=1.
    m = binary_metrics([True, True, False, False], [0.9, 0.4, 0.6, 0.1])
    assert (m.precision, m.recall, m.f1, m.fpr) == (0.5, 0.5, 0.5, 0.5)
    # AP = sum over positives of precision at their rank / #pos = (1/1 + 2/3) / 2
    assert m.auprc == pytest.approx((1 + 2 / 3) / 2)
    perfect = binary_metrics([True, False, False], [0.8, 0.3, 0.2])
    assert (perfect.precision, perfect.recall, perfect.fpr, perfect.auprc) == (1.0, 1.0, 0.0, 1.0)
    none_flagged = binary_metrics([True, False], [0.1, 0.2])
    assert (none_flagged.precision, none_flagged.recall, none_flagged.f1) == (0.0, 0.0, 0.0)
    assert math.isnan(binary_metrics([False, False], [0.1, 0.9]).auprc)
    assert math.isnan(binary_metrics([True], [0.9]).fpr)


def test_per_category_metrics_use_category_positives_against_all_safe_rows():
    labels = [["S1"], ["S1", "S10"], ["S10"], [], []]
    scores = [0.9, 0.3, 0.7, 0.6, 0.2]
    per = per_category_metrics(labels, scores)
    assert list(per) == ["S1", "S10"]
    # S1: rows 0,1 vs safe rows 3,4 -> TP=1 (0.9) FN=1 (0.3) FP=1 (0.6) TN=1
    s1 = per["S1"]
    assert (s1.n, s1.positives, s1.precision, s1.recall, s1.fpr) == (4, 2, 0.5, 0.5, 0.5)
    # S1 ranking 0.9+, 0.6-, 0.3+, 0.2-: AP = (1 + 2/3) / 2
    assert s1.auprc == pytest.approx((1 + 2 / 3) / 2)
    # S10: rows 1,2 (0.3, 0.7) vs 0.6, 0.2: ranking 0.7+, 0.6-, 0.3+, 0.2-
    assert per["S10"].recall == 0.5 and per["S10"].auprc == pytest.approx((1 + 2 / 3) / 2)
    assert category_accuracy(labels, [["S1"], ["S2"], ["S10", "S1"], [], ["S1"]]) == pytest.approx(2 / 3)
    report = evaluate(labels, scores, [["S1"], [], ["S10"], ["S1"], []])
    assert report["overall"]["positives"] == 3 and report["category_accuracy"] == pytest.approx(2 / 3)
