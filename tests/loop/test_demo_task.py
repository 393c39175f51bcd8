"""The demo data: shipped files equal the generator, and they carry the intended error."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from herd.core.verifiers import NumberMatchVerifier
from herd.loop.demo_task import DemoTaskSpec, write_demo_data

REPO = Path(__file__).resolve().parents[2]


def test_shipped_demo_data_is_reproducible(tmp_path):
    paths = write_demo_data(tmp_path)
    for name, p in paths.items():
        assert p.read_bytes() == (REPO / "data" / "demo" / p.name).read_bytes(), name


def test_warm_start_is_mostly_wrong_exactly_on_traps():
    rows = [json.loads(l) for l in (REPO / "data/demo/warm_start.jsonl").read_text().splitlines()]
    prompts = {p["id"]: p for p in map(json.loads, (REPO / "data/demo/prompts.jsonl").read_text().splitlines())}
    v = NumberMatchVerifier()
    right = Counter()
    for row in rows:
        pid = row["id"].rsplit("-demo", 1)[0]
        right[pid] += v.verify(row["messages"][-1]["content"], prompts[pid]["reference"])
    spec = DemoTaskSpec()
    for pid, p in prompts.items():
        expected = spec.demos_per_problem - spec.wrong_demos if p["trap"] else spec.demos_per_problem
        assert right[pid] == expected, pid
    assert sum(p["trap"] for p in prompts.values()) == 12


def test_preferences_always_prefer_the_right_sum():
    v = NumberMatchVerifier()
    prompts = {p["id"]: p for p in map(json.loads, (REPO / "data/demo/prompts.jsonl").read_text().splitlines())}
    for line in (REPO / "data/demo/preferences.jsonl").read_text().splitlines():
        row = json.loads(line)
        ref = prompts[row["id"].removesuffix("-pref")]["reference"]
        assert v.verify(row["chosen"][0]["content"], ref) and not v.verify(row["rejected"][0]["content"], ref)
