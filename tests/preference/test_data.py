"""Preference rows: rankings expand to every implied pair, similar pairs go, bad rows are named."""

from __future__ import annotations

import pytest

from herd.preference.data import PreferenceDataError, load_pairs, split_pairs
from tests.conftest import DATA
from tests.preference.conftest import pref_row, write_jsonl


def _msg(text):
    return [{"role": "assistant", "content": text}]


def test_three_way_ranking_expands_to_three_ordered_pairs(tmp_path):
    row = pref_row("tea") | {"edited": _msg("Tea is a drink brewed from leaves; here is how to make it.")}
    pairs, report = load_pairs(write_jsonl(tmp_path / "r.jsonl", [row]))
    got = [(p.chosen[0]["content"][:6], p.rejected[0]["content"][:6]) for p in pairs]
    # edited > chosen > rejected: (e, c), (e, r), (c, r) -- best always on the chosen side.
    assert got == [("Tea is", "Sure, "), ("Tea is", "No."), ("Sure, ", "No.")]
    assert report.rows == 1 and report.pairs == 3
    two_way, _ = load_pairs(write_jsonl(tmp_path / "two.jsonl", [pref_row("tea")]))
    assert len(two_way) == 1


def test_sampler_record_stays_with_the_sampled_pair_only(tmp_path):
    row = pref_row("tea") | {"edited": _msg("An edit."), "chosen_token_ids": [1, 2], "sampler_model": "/m"}
    pairs, _ = load_pairs(write_jsonl(tmp_path / "r.jsonl", [row]))
    assert [bool(p.sampler) for p in pairs] == [False, False, True]


def test_similar_pairs_are_filtered_and_counted(tmp_path):
    rows = [pref_row("a"), pref_row("b") | {"similar": True}, pref_row("c") | {"similar": False}]
    pairs, report = load_pairs(write_jsonl(tmp_path / "s.jsonl", rows))
    assert [p.prompt[0]["content"] for p in pairs] == ["Tell me about a.", "Tell me about c."]
    assert report.similar_filtered == 1
    kept, _ = load_pairs(tmp_path / "s.jsonl", filter_similar=False)
    assert len(kept) == 3


@pytest.mark.parametrize(
    "broken, message",
    [
        ({"chosen": None}, "missing field 'chosen'"),
        ({"rejected": _msg("Sure, tea are wonderful and I am happy to help.")}, "identical"),
        ({"rejected": _msg("   ")}, "empty response"),
        ({"prompt": [{"role": "wizard", "content": "hi"}]}, "unknown role"),
    ],
)
def test_bad_rows_name_file_and_row_or_are_skipped_and_counted(tmp_path, broken, message):
    rows = [pref_row("a"), pref_row("tea") | broken, pref_row("b")]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(PreferenceDataError, match=rf"bad\.jsonl:2: .*{message}"):
        load_pairs(path)
    pairs, report = load_pairs(path, bad_rows="skip")
    assert len(pairs) == 2 and sum(report.skipped.values()) == 1


def test_hh_rlhf_rows_go_through_the_shared_converter():
    pairs, report = load_pairs(DATA / "hh-rlhf-harmless" / "test.jsonl.gz", fmt="hh-rlhf", max_rows=40, bad_rows="skip")
    assert report.rows == 40 and len(pairs) + sum(report.skipped.values()) == 40
    p = pairs[0]
    assert p.prompt[-1]["role"] == "user" and p.chosen[0]["role"] == "assistant"
    assert p.chosen != p.rejected


def test_split_keeps_each_prompt_on_one_side_and_is_seeded(tmp_path):
    rows = [pref_row(f"t{i}") for i in range(20)] + [pref_row("t0") | {"rejected": _msg("Nope.")}]
    pairs, _ = load_pairs(write_jsonl(tmp_path / "p.jsonl", rows))
    train, held = split_pairs(pairs, 0.25, seed=3)
    assert {p.prompt[0]["content"] for p in train}.isdisjoint({p.prompt[0]["content"] for p in held})
    assert len(train) + len(held) == 21
    again, held2 = split_pairs(pairs, 0.25, seed=3)
    assert [p.source for p in held2] == [p.source for p in held]
