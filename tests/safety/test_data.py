"""herd's own labelled safety data: coverage per category, honest splits, no XSTest leakage."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from herd.safety.data import DataError, read_classify_input, read_labelled, read_refusal_input

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "safety"
CODES = [f"S{i}" for i in range(1, 15)]


def rows(name):
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def test_every_category_has_unsafe_prompts_responses_and_lookalikes():
    kinds = defaultdict(Counter)
    for r in rows("guard.jsonl"):
        kinds[r["category"]][r["kind"]] += 1
    assert sorted(kinds, key=lambda c: int(c[1:])) == CODES
    for code, k in kinds.items():
        assert k["unsafe_prompt"] >= 10 and k["unsafe_response"] >= 4, code
        assert k["safe_prompt"] >= 12 and k["safe_response"] >= 4 and k["refusal_response"] >= 4, code
        assert sum(k.values()) >= 34, code
    # every row parses as a llama-cookbook TrainingExample
    assert len(read_labelled(DATA / "guard.jsonl")) == len(rows("guard.jsonl"))


def test_no_xstest_prompt_is_in_herd_data():
    with open(REPO / "data" / "xstest" / "xstest_prompts.csv", encoding="utf-8", newline="") as f:
        xs = {r["prompt"].strip().lower() for r in csv.DictReader(f)}
    ours = {r["prompt"].strip().lower() for name in ("guard.jsonl", "refusal.jsonl") for r in rows(name)}
    assert not xs & ours


def test_splits_never_share_a_group():
    for name, key in (("guard.jsonl", "prompt"), ("refusal.jsonl", "response")):
        sides = defaultdict(set)
        for r in rows(name):
            sides[r[key].strip().lower()].add(r["split"])
        assert all(len(s) == 1 for s in sides.values()), name
        assert 0.15 < Counter(r["split"] for r in rows(name))["test"] / len(rows(name)) < 0.35


def test_refusal_set_has_the_hard_cases():
    kinds = Counter((r["kind"], r["refusal"]) for r in rows("refusal.jsonl"))
    assert kinds[("partial_refusal", True)] >= 25 and kinds[("apology_compliance", False)] >= 10
    assert kinds[("full_refusal", True)] >= 40 and kinds[("harmful_compliance", False)] >= 40


def test_build_script_reproduces_the_jsonl(tmp_path):
    before = {n: (DATA / n).read_bytes() for n in ("guard.jsonl", "refusal.jsonl")}
    subprocess.run([sys.executable, str(DATA / "build.py")], check=True, capture_output=True)
    assert {n: (DATA / n).read_bytes() for n in before} == before


def test_malformed_rows_name_file_and_row(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text('{"prompt": "ok", "label": "safe"}\n\n{"prompt": "x", "label": "unsafe"}\n')
    with pytest.raises(DataError, match=r"in.jsonl: row 3: an 'unsafe' row needs"):
        read_labelled(f)
    f.write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    with pytest.raises(DataError, match=r"row 2: field 'prompt'"):
        read_classify_input(f)
    f.write_text('{"prompt": "ok", "response": "fine"}\n[1]\n')
    with pytest.raises(DataError, match=r"row 2: expected a JSON object"):
        read_refusal_input(f)
    f.write_text('{"conversation": [{"role": "bot", "content": "x"}]}\n')
    with pytest.raises(DataError, match=r"row 1: field 'conversation': message 0 has unknown role"):
        read_classify_input(f)
    f.write_text('{"prompt": "a"\n')
    with pytest.raises(DataError, match=r"row 1: not valid JSON"):
        read_classify_input(f)
