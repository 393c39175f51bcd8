"""The stage DAG rule: done stages are skipped, interrupted ones resume, changed ones re-run,
failed ones leave a readable error and nothing that looks finished."""

from __future__ import annotations

import json

import pytest

from herd.core.artifacts import content_hash
from herd.loop.stages import StageRunner


def _writer(out, text, calls):
    def run():
        calls.append(text)
        out.mkdir(parents=True, exist_ok=True)
        (out / "data.jsonl").write_text(text)
        return {"rows": 1}

    return run


def test_done_stage_is_skipped_and_changed_config_reruns(tmp_path):
    runner, out, calls = StageRunner(tmp_path), tmp_path / "r1" / "sample", []
    m1 = runner.run("round1.sample", out, {"k": 8}, {"model": "h1"}, _writer(out, "a", calls))
    m2 = runner.run("round1.sample", out, {"k": 8}, {"model": "h1"}, _writer(out, "a", calls))
    assert calls == ["a"] and m1.output_hash == m2.output_hash == content_hash(out)
    runner.run("round1.sample", out, {"k": 4}, {"model": "h1"}, _writer(out, "b", calls))
    assert calls == ["a", "b"]
    runner.run("round1.sample", out, {"k": 4}, {"model": "h2"}, _writer(out, "c", calls))  # an input changed
    assert calls == ["a", "b", "c"] and (out / "data.jsonl").read_text() == "c"


def test_interrupted_stage_keeps_partial_work_for_the_same_config(tmp_path):
    runner, out = StageRunner(tmp_path), tmp_path / "sft"

    def killed():
        out.mkdir()
        (out / "checkpoint-1").mkdir()
        raise KeyboardInterrupt  # as if killed mid-stage

    with pytest.raises(KeyboardInterrupt):
        runner.run("round1.sft", out, {"lr": 1}, {}, killed)
    assert runner.read_manifest("round1.sft") is None
    seen = []

    def resume():
        seen.append(sorted(p.name for p in out.iterdir()))
        (out / "model.safetensors").write_bytes(b"w")

    runner.run("round1.sft", out, {"lr": 1}, {}, resume)
    assert seen == [["checkpoint-1"]]  # same config: the partial work was still there
    assert runner.state("round1.sft").state == "done"

    def fresh():
        seen.append(sorted(p.name for p in out.iterdir()) if out.exists() else [])
        out.mkdir(exist_ok=True)
        (out / "model.safetensors").write_bytes(b"x")

    runner.run("round1.sft", out, {"lr": 2}, {}, fresh)
    assert seen[-1] == []  # other config: old output wiped before running


def test_failed_stage_records_error_and_no_manifest(tmp_path):
    runner, out = StageRunner(tmp_path), tmp_path / "dpo"

    def boom():
        out.mkdir()
        raise ValueError("pairs.jsonl:3: identical chosen and rejected")

    with pytest.raises(ValueError):
        runner.run("round1.dpo", out, {}, {}, boom)
    state = runner.state("round1.dpo")
    assert state.state == "failed" and "pairs.jsonl:3" in state.error
    assert not (tmp_path / "manifests" / "round1.dpo.json").exists()
    status = json.loads((tmp_path / "status" / "round1.dpo.json").read_text())
    assert "Traceback" in status["traceback"]


def test_stage_that_writes_nothing_is_not_done(tmp_path):
    runner = StageRunner(tmp_path)
    with pytest.raises(RuntimeError, match="without writing"):
        runner.run("round1.eval", tmp_path / "eval", {}, {}, lambda: {})
    assert runner.read_manifest("round1.eval") is None


def test_content_hash_ignores_logs_and_checkpoints(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, noise in ((a, "1"), (b, "2")):
        (d / "checkpoint-5").mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"same")
        (d / "metrics.json").write_text(noise)  # timings differ between runs
        (d / "checkpoint-5" / "model.safetensors").write_bytes(noise.encode())
    assert content_hash(a) == content_hash(b)
    (b / "model.safetensors").write_bytes(b"other")
    assert content_hash(a) != content_hash(b)
