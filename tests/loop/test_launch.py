"""The round runner's ``launch.mode: accelerate`` path: the command a user would type, a free
rendezvous port per multi-process launch, a real 2-process CPU run of a stage through it, and a
failed launch that points at its log."""

from __future__ import annotations

import json
import socket

import pytest

from herd.loop.config import Launch
from herd.loop.launch import LaunchError, accelerate_command, free_port, train
from herd.sft import SFTConfig
from tests.conftest import REPO

DDP = REPO / "recipes" / "accelerate" / "ddp.yaml"


def _value(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def test_command_picks_a_free_port_for_multi_process_launches(tmp_path):
    cfg = tmp_path / "sft.launch.yaml"
    cmd = accelerate_command("sft", cfg, Launch(mode="accelerate", config_file=str(DDP), num_processes=2))
    assert cmd[-4:] == ["-m", "herd.sft", "--config", str(cfg)]
    assert _value(cmd, "--config_file") == str(DDP) and _value(cmd, "--num_processes") == "2"
    assert _value(cmd, "--mixed_precision") == "no"  # CPU: the GPU configs' bf16 is turned off
    port = int(_value(cmd, "--main_process_port"))
    with socket.socket() as s:  # nothing holds it: a launch could bind it
        s.bind(("127.0.0.1", port))
    fixed = accelerate_command("dpo", cfg, Launch(mode="accelerate", num_processes=2, main_process_port=29611))
    assert _value(fixed, "--main_process_port") == "29611" and "herd.preference.dpo" in fixed
    assert "--main_process_port" not in accelerate_command("sft", cfg, Launch(mode="accelerate", num_processes=1))


def test_free_port_avoids_a_port_in_use():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        assert free_port() != held.getsockname()[1]


@pytest.mark.slow
def test_sft_stage_through_accelerate_launch_with_two_processes(tiny_kit, tmp_path):
    out = tmp_path / "round_1" / "sft"
    cfg = SFTConfig(model=str(tiny_kit["policy"]), data=[str(REPO / "data" / "demo" / "warm_start.jsonl")],
                    output_dir=str(out), max_steps=2, per_device_batch_size=2, max_length=64, save_steps=1)
    launch = Launch(mode="accelerate", config_file=str(DDP), num_processes=2)
    train("sft", cfg, launch, tmp_path / "logs")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_processes"] == 2
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    log = (tmp_path / "logs" / "round_1.sft.log").read_text()
    assert log.startswith("$ ") and "--num_processes 2" in log.splitlines()[0]

    bad = SFTConfig(model=str(tmp_path / "no-such-model"), data=cfg.data, output_dir=str(tmp_path / "round_2" / "sft"))
    with pytest.raises(LaunchError, match=r"sft under accelerate launch exited with \d+; log .*round_2\.sft\.log"):
        train("sft", bad, launch, tmp_path / "logs")
    assert not (tmp_path / "round_2" / "sft").exists()
