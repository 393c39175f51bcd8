"""Kill ``herd sample`` with SIGKILL mid-run, rerun it: every prompt exactly once, and the same
samples, SFT rows and pairs as a run that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from herd.loop.cli import main as herd_main
from tests.rejection_sampling.conftest import VARYING_STOPS, read_jsonl, write_rows, xstest_rows

REPO = Path(__file__).resolve().parents[2]
N_PROMPTS, SHARD, K = 12, 2, 3


def _config(tiny_kit, tmp_path: Path) -> Path:
    prompts = write_rows(tmp_path / "xstest.jsonl", xstest_rows(N_PROMPTS))
    cfg = {
        "model": str(tiny_kit["policy"]),
        "output_dir": str(tmp_path / "killed"),
        "round": 2,
        "prompt_sets": [{"path": str(prompts), "system_prompt": "Be brief."}],
        "sampling": {"k": K, "max_new_tokens": 16, "seed": 11, "stop_tokens": VARYING_STOPS},
        "scorers": {"reward": {"kind": "reward_model", "model": str(tiny_kit["reward"]), "batch_size": 8}},
        "backend": "hf",
        "hf_batch_size": 2,
        "shard_size": SHARD,
    }
    path = tmp_path / "sample.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _herd_sample(config: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "herd.loop.cli", "sample", "--config", str(config)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _kill_after_first_shard(proc: subprocess.Popen, work: Path, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        done = [d for d in work.glob("shard-*")] if work.is_dir() else []
        if done:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return len(done)
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"no shard appeared before the process ended: {proc.communicate()[0][-2000:]!r}")


@pytest.mark.slow  # two `herd sample` subprocesses (~15 s of imports each) plus a clean run
def test_killed_run_resumes_without_losing_or_duplicating_prompts(tiny_kit, tmp_path):
    config = _config(tiny_kit, tmp_path)
    out = tmp_path / "killed"
    proc = _herd_sample(config)
    _kill_after_first_shard(proc, out / ".work")
    assert proc.returncode == -signal.SIGKILL
    finished = sorted(p.name for p in (out / ".work").glob("shard-*"))
    assert 0 < len(finished) < N_PROMPTS // SHARD  # really killed mid-run
    assert not (out / "manifest.json").exists() and not (out / "samples.jsonl").exists()

    rerun = _herd_sample(config)
    log = rerun.communicate(timeout=300)[0].decode()
    assert rerun.returncode == 0, log[-3000:]
    assert f"{N_PROMPTS // SHARD - len(finished)} of {N_PROMPTS // SHARD} shards to sample" in log

    samples = read_jsonl(out / "samples.jsonl")
    ids = [r["prompt_id"] for r in samples]
    expected = [r["id"] for r in xstest_rows(N_PROMPTS)]
    assert sorted(set(ids)) == sorted(expected) and len(ids) == N_PROMPTS * K
    assert [(r["prompt_id"], r["k"]) for r in samples] == [(i, k) for i in expected for k in range(K)]

    # The same command, never interrupted (in-process, output_dir overridden on the command line).
    assert herd_main(["sample", "--config", str(config), f"output_dir={tmp_path / 'clean'}"]) == 0
    for name in ("samples", "sft", "pairs"):
        assert (out / f"{name}.jsonl").read_bytes() == (tmp_path / "clean" / f"{name}.jsonl").read_bytes(), name
    assert len(read_jsonl(out / "sft.jsonl")) > 0 and len(read_jsonl(out / "pairs.jsonl")) > 0
