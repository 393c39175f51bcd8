"""The shared JSONL reader: plain and gzipped files read alike, row numbers are 1-based line
numbers (blank lines counted, not yielded), and each stage's own error type carries file + row."""

from __future__ import annotations

import gzip

import pytest

from herd.core.jsonl import iter_jsonl


class StageError(ValueError):
    pass


def test_plain_and_gzipped_files_give_the_same_rows_with_line_numbers(tmp_path):
    text = '{"a": 1}\n\n{"a": 2}\n'
    (tmp_path / "x.jsonl").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "x.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    expected = [(1, {"a": 1}), (3, {"a": 2})]
    assert list(iter_jsonl(tmp_path / "x.jsonl")) == expected
    assert list(iter_jsonl(tmp_path / "x.jsonl.gz")) == expected


def test_errors_name_file_and_row_in_the_callers_type(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(StageError, match=r"bad\.jsonl: row 2: expected a JSON object"):
        list(iter_jsonl(bad, StageError))
    assert list(iter_jsonl(bad, StageError, require_object=False))[1] == (2, [1, 2])
    bad.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(StageError, match=r"bad\.jsonl: row 2: not valid JSON"):
        list(iter_jsonl(bad, StageError))
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl: input file not found"):
        list(iter_jsonl(tmp_path / "missing.jsonl"))
