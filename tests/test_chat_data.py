"""core.chat_data: row-numbered validation of chat files and the HH-RLHF converters."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from herd.core.chat import ChatFormatError
from herd.core.chat_data import (
    ChatDataError,
    hh_to_messages,
    hh_to_preference,
    load_chat_data,
    load_hh_preferences,
    parse_hh_dialogue,
)

HH = Path(__file__).resolve().parent.parent / "data" / "hh-rlhf-harmless" / "test.jsonl.gz"

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def test_hh_dialogue_becomes_messages_with_stripped_content():
    text = "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman:  And 3+3? \n\nAssistant: 6"
    assert parse_hh_dialogue(text) == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ]


@pytest.mark.parametrize("text", ["no tags at all", "preamble\n\nHuman: hi\n\nAssistant: yo"])
def test_hh_dialogue_rejects_text_outside_turns(text):
    with pytest.raises(ChatFormatError):
        parse_hh_dialogue(text)


def test_hh_preference_splits_shared_prompt_from_the_two_replies():
    row = {
        "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant: Sure.",
        "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant: No.",
    }
    assert hh_to_preference(row) == {
        "prompt": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "help me"},
        ],
        "chosen": [{"role": "assistant", "content": "Sure."}],
        "rejected": [{"role": "assistant", "content": "No."}],
    }


def test_hh_preference_rejects_pairs_whose_prompts_differ():
    row = {"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"}
    with pytest.raises(ChatFormatError, match="differ before their last turn"):
        hh_to_preference(row)


def test_real_hh_file_converts_except_its_empty_replies():
    """Every shipped HH-RLHF pair converts except the four whose chosen reply is empty."""
    failures = []
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    for i, row in enumerate(rows):
        try:
            pref = hh_to_preference(row)
            assert pref["prompt"] + pref["chosen"] == hh_to_messages(row)
        except ChatFormatError as e:
            failures.append((i, str(e)))
    assert len(rows) == 2312
    assert failures and all("empty" in msg or "differ" in msg for _, msg in failures)
    assert len(failures) < 20
    data = load_chat_data(HH, fmt="hh-rlhf", bad_rows="skip")
    assert len(data.rows) == 2308 and data.problem_counts() == {"empty assistant turn": 4}


def write_lines(path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_malformed_rows_are_reported_with_file_and_line(tmp_path):
    bad = tmp_path / "chats.jsonl"
    lines = [
        json.dumps(GOOD).encode(),  # line 1
        json.dumps({"text": "no messages field"}).encode(),  # 2
        json.dumps({"messages": []}).encode(),  # 3
        json.dumps({"messages": [{"role": "bot", "content": "x"}]}).encode(),  # 4
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]}).encode(),  # 5
        b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',  # 6: latin-1 byte, not UTF-8
        b"",  # 7: blank lines are ignored
        json.dumps(GOOD).encode(),  # 8
        b"{not json",  # 9
    ]
    write_lines(bad, lines)
    with pytest.raises(ChatDataError) as err:
        load_chat_data([bad])
    msg = str(err.value)
    assert "6 malformed rows" in msg
    for line, reason in [(2, "no messages"), (3, "no messages"), (4, "unknown role"),
                         (5, "empty assistant turn"), (6, "not UTF-8"), (9, "not valid JSON")]:
        assert f"{bad}: line {line}: {reason}" in msg
    assert "line 1:" not in msg and "line 8:" not in msg

    skipped = load_chat_data([bad], bad_rows="skip")
    assert [r.location for r in skipped.rows] == ["line 1", "line 8"]
    assert skipped.problem_counts() == {
        "no messages": 2, "unknown role": 1, "empty assistant turn": 1, "not UTF-8": 1, "not valid JSON": 1,
    }


def test_datasets_directory_rows_are_reported_by_index(tmp_path):
    from datasets import Dataset

    rows = [GOOD, {"messages": [{"role": "user", "content": "only a question"}]}, GOOD]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(ChatDataError, match=r"ds: index 1: no assistant turn"):
        load_chat_data([tmp_path / "ds"])
    ok = load_chat_data([tmp_path / "ds"], bad_rows="skip")
    assert [r.messages for r in ok.rows] == [GOOD["messages"]] * 2


def test_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ChatDataError, match="nope.jsonl: no such file"):
        load_chat_data([tmp_path / "nope.jsonl"])


def test_hh_preference_files_load_with_row_numbered_problems():
    with pytest.raises(ChatDataError, match=r"test\.jsonl\.gz: line \d+: bad HH-RLHF row: empty assistant turn"):
        load_hh_preferences(HH)
    rows, problems = load_hh_preferences(HH, bad_rows="skip")
    assert len(rows) + len(problems) == 2312 and rows[0]["chosen"][0]["role"] == "assistant"
    assert all(p.location.startswith("line ") for p in problems)
