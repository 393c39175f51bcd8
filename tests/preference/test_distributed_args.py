"""Under ``accelerate launch`` on a CPU-only machine, the preference stages' Trainers must join the
launcher's process group. When they did not (no ``use_cpu``: transformers then saw
DistributedType.NO), every process trained alone as rank 0 and all of them wrote the same
``checkpoint-N``, staged the same ``final`` and published and deleted the same directories:
the intermittent 2-process DPO save race (FileNotFoundError, published model without
config.json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from herd.loop.launch import free_port
from herd.preference.output import check_world
from tests.conftest import REPO

_PROBE = """
import json, os, sys
import torch
from herd.preference.data import PreferenceDataConfig
from herd.preference.dpo import DPOStageConfig, _trl_args
from herd.preference.reward import RewardConfig, _trainer_args

data = PreferenceDataConfig("unused.jsonl")
out = {}
for name, args in [
    ("dpo", _trl_args(DPOStageConfig(model="m", output_dir=sys.argv[1] + "/dpo", data=data), False)),
    ("reward", _trainer_args(RewardConfig(model="m", output_dir=sys.argv[1] + "/rm", data=data))),
]:
    out[name] = [args.world_size, args.process_index, args.should_save, str(args.parallel_mode)]
# One file per process: two processes printing to one pipe can interleave their lines.
with open(os.path.join(sys.argv[1], "probe-" + os.environ["RANK"] + ".json"), "w") as f:
    json.dump(out, f)
"""


def test_check_world_refuses_processes_outside_the_trainers_group(monkeypatch):
    alone = SimpleNamespace(num_processes=1, distributed_type="NO")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="launched as 2 processes"):
        check_world(alone)
    check_world(SimpleNamespace(num_processes=2, distributed_type="MULTI_CPU"))
    monkeypatch.delenv("WORLD_SIZE")
    check_world(alone)  # a plain single-process run


@pytest.mark.slow
def test_preference_stage_args_join_a_two_process_cpu_launch(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "recipes/accelerate/ddp.yaml"),
           "--num_processes", "2", "--main_process_port", str(free_port()), "--mixed_precision", "no", str(script), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("probe-*.json"))]
    assert len(seen) == 2
    for stage in ("dpo", "reward"):
        ranks = sorted(s[stage][:3] for s in seen)  # [world_size, process_index, should_save]
        assert ranks == [[2, 0, True], [2, 1, False]], (stage, seen)
        assert all(s[stage][3] == "ParallelMode.DISTRIBUTED" for s in seen)
