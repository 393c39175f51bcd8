"""``accelerate launch`` with 2 CPU processes (gloo DDP): one published output, and 2 × batch 2
ends where 1 × batch 4 ends."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import torch
import yaml

from herd.core.models import load_causal_lm
from herd.loop.config import Launch
from herd.loop.launch import accelerate_command
from herd.preference import DPOStageConfig, train_dpo
from herd.preference.data import PreferenceDataConfig
from tests.conftest import REPO
from tests.preference.conftest import pref_row, write_jsonl

pytestmark = pytest.mark.slow


def test_two_process_dpo_equals_one_process_with_the_same_global_batch(tiny_kit, tmp_path):
    """Every row is the same pair, so the comparison checks the distributed arithmetic (gradient
    averaging, loss scaling, one published output) independently of how accelerate's sharded
    sampler orders the data (with 24 distinct pairs, 2 × 2 and 1 × 4 ended 0.5 apart in relative
    weight-update norm here, so the two do not draw the same permutation).
    The NLL term is off: TRL averages it over tokens within each process and DDP then averages
    the processes, which weighs tokens differently from one process over the whole batch (the
    sigmoid term is a per-pair mean, so it splits exactly)."""
    pairs_file = write_jsonl(tmp_path / "same.jsonl", [pref_row("llamas")] * 16)
    base = {"model": str(tiny_kit["policy"]), "data": {"path": str(pairs_file)}, "max_steps": 3,
            "learning_rate": 1e-3, "gradient_checkpointing": False, "group_by_length": False,
            "nll_weight": 0.0, "save_steps": 2}
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump({**base, "output_dir": str(tmp_path / "ddp"), "batch_size": 2}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    # The command the round runner types (launch.mode: accelerate): free port, CPU precision.
    cmd = accelerate_command("dpo", cfg, Launch(mode="accelerate", config_file=str(REPO / "recipes/accelerate/ddp.yaml"), num_processes=2))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir() if "ddp" in p.name) == ["ddp", "ddp.yaml"]
    # Identical rows make 2 x 2 and 1 x 4 agree even if the two processes never joined one DDP
    # group (each then trained alone as "rank 0" and both wrote the same output: the old save
    # race); the published metrics say how many processes trained together.
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["num_processes"] == 2

    data = PreferenceDataConfig(str(pairs_file))
    single = train_dpo(DPOStageConfig(**{**base, "data": data}, output_dir=str(tmp_path / "single"), batch_size=4))
    w0 = load_causal_lm(str(tiny_kit["policy"])).state_dict()
    wd, ws = load_causal_lm(str(tmp_path / "ddp")).state_dict(), load_causal_lm(str(single)).state_dict()
    for k in w0:
        assert float((wd[k] - ws[k]).norm() / (ws[k] - w0[k]).norm().clamp_min(1e-12)) < 1e-3, k
    assert any(not torch.equal(ws[k], w0[k]) for k in w0)
