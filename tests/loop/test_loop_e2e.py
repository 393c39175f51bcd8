"""The whole loop on the micro tiny model: 2 rounds, real vLLM sampling, report; kill -9 and
resume; a changed setting re-runs exactly its stage and what follows.

All runs go through the real ``herd run`` command in a subprocess. The uninterrupted run is shared
by the module and serves as the reference.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
import torch

from tests.conftest import requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "tests" / "loop" / "recipes" / "tiny_loop.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
STAGES = [
    "round0.base", "round0.warm_start", "round0.reward", "round0.eval",
    "round1.sample", "round1.sft", "round1.dpo", "round1.eval",
    "round2.reward", "round2.sample", "round2.sft", "round2.dpo", "round2.eval",
    "control.sft", "control.eval",
]


def _cmd(workdir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "herd.loop.cli", "run", str(RECIPE), "--workdir", str(workdir), *overrides]


def _run(workdir: Path, *overrides: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(_cmd(workdir, *overrides), env=ENV, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _manifests(workdir: Path) -> dict[str, dict]:
    return {
        p.stem: json.loads(p.read_text())
        for p in (workdir / "manifests").glob("*.json")
        if not p.stem.endswith(".attempt")
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("loop") / "ref"
    start = time.time()
    proc = _run(workdir)
    return workdir, proc.stderr + f"\n[wall {time.time() - start:.0f}s]"


def test_two_rounds_end_to_end_with_report(reference):
    workdir, log = reference
    manifests = _manifests(workdir)
    assert sorted(manifests) == sorted(STAGES)
    report = workdir / "report"
    text = (report / "report.md").read_text()
    assert "Rounds and control run" in text
    history = json.loads((report / "metrics.json").read_text())
    rounds = history if isinstance(history, list) else history["rounds"]
    assert [m["round"] for m in rounds] == [0, 1, 2]
    for m in rounds:
        for key in ("verifier_accuracy", "reward_mean", "violation_rate", "false_refusal_rate"):
            assert isinstance(m[key], (int, float)), (key, m)
    pngs = list(report.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    # Samples came from vLLM with K=4 per prompt, and carry per-token log-probs for DPO.
    rows = [json.loads(l) for l in (workdir / "round_1" / "sample" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 12 * 4
    assert all(len(r["logprobs"]) == len(r["token_ids"]) for r in rows)
    # The policy actually changed each round.
    w1 = load_file(workdir / "round_1" / "dpo" / "model.safetensors")
    w0 = load_file(workdir / "round_0" / "warm_start" / "model.safetensors")
    assert any(not torch.equal(w1[k], w0[k]) for k in w0)
    assert "verifier_accuracy" in (workdir / "report" / "summary.md").read_text() or "verifier accuracy" in (workdir / "report" / "summary.md").read_text()


def test_rerun_skips_everything(reference):
    workdir, _ = reference
    before = _manifests(workdir)
    proc = _run(workdir)
    assert _manifests(workdir) == before
    assert proc.stderr.count("up to date, skipped") >= len(STAGES)
    status = subprocess.run([sys.executable, "-m", "herd.loop.cli", "status", "--workdir", str(workdir)],
                            env=ENV, capture_output=True, text=True, timeout=600)
    assert status.returncode == 0
    lines = {l.split()[0]: l.split()[1] for l in status.stdout.splitlines()[1:]}
    assert all(lines[s] == "done" for s in STAGES), status.stdout


def _wait_for(workdir: Path, key: str, proc: subprocess.Popen, extra=lambda: True, timeout: float = 900,
              log_path: Path | None = None) -> None:
    status = workdir / "status" / f"{key}.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if status.exists() and json.loads(status.read_text()).get("state") == "running" and extra():
            return
        if proc.poll() is not None:
            tail = log_path.read_text()[-3000:] if log_path else ""
            raise AssertionError(f"run ended before {key} started:\n{tail}")
        time.sleep(0.05)
    raise AssertionError(f"{key} never started")


def _kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: vLLM engine and trainer processes too
    proc.wait()


def test_kill_9_during_sampling_sft_and_dpo_then_resume_matches(reference, tmp_path):
    """Sample rows record the sampler's path, so the killed run must live where the reference
    ran: the reference is moved aside meanwhile and put back afterwards."""
    workdir, _ = reference
    ref_dir = tmp_path / "reference"
    workdir.rename(ref_dir)
    try:
        _kill_and_resume(workdir, ref_dir)
    finally:
        workdir.rename(tmp_path / "killed")
        ref_dir.rename(workdir)


def _kill_and_resume(workdir: Path, ref_dir: Path) -> None:
    shard_dir = workdir / "round_1" / "sample"
    r1 = workdir / "round_1"
    kill_points = [  # each after the stage has saved partial work, well before it can finish
        ("round1.sample", lambda: any(shard_dir.rglob("shard.json"))),
        ("round1.sft", lambda: any(r1.glob("sft.checkpoints/checkpoint-*/trainer_state.json"))),
        ("round1.dpo", lambda: any(r1.glob(".dpo.work/checkpoint-*/trainer_state.json"))),
    ]
    for key, ready in kill_points:
        log = open(workdir.parent / f"killed-{key}.log", "w")
        proc = subprocess.Popen(_cmd(workdir), env=ENV, stdout=subprocess.DEVNULL, stderr=log,
                                text=True, start_new_session=True)
        _wait_for(workdir, key, proc, ready, log_path=Path(log.name))
        _kill_group(proc)
        status = subprocess.run([sys.executable, "-m", "herd.loop.cli", "status", "--workdir", str(workdir)],
                                env=ENV, capture_output=True, text=True, timeout=600)
        assert f"{key}" in status.stdout and "done" not in [l.split()[1] for l in status.stdout.splitlines()[1:] if l.startswith(key + " ")]
    _run(workdir)
    got, want = _manifests(workdir), _manifests(ref_dir)
    assert sorted(got) == sorted(want)
    for key in STAGES:
        assert got[key]["config_hash"] == want[key]["config_hash"], key
        assert got[key]["output_hash"] == want[key]["output_hash"], f"{key}: resumed output differs"
    # No prompt lost or duplicated by the killed sampling run.
    from collections import Counter

    ids = Counter(json.loads(l)["prompt_id"] for l in (workdir / "round_1" / "sample" / "samples.jsonl").read_text().splitlines())
    assert len(ids) == 12 and set(ids.values()) == {4}


def test_changed_dpo_setting_reruns_dpo_and_what_follows(reference, tmp_path):
    import shutil

    ref_dir, _ = reference
    workdir = tmp_path / "changed"
    shutil.copytree(ref_dir, workdir)
    before = _manifests(workdir)
    # Paths inside manifests point at the copy's own files only through hashes: still valid.
    _run(workdir, "dpo.settings.learning_rate=3e-4")
    after = _manifests(workdir)
    rerun = {k for k in STAGES if after[k]["created"] != before[k]["created"]}
    # round2.reward trains on human data + round-1 pairs, which did not change: it stays; so do
    # the control run (same step count) and everything before DPO.
    assert rerun == {"round1.dpo", "round1.eval", "round2.sample", "round2.sft", "round2.dpo", "round2.eval"}, sorted(rerun)
