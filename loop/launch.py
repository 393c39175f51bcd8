"""Start a training stage in this process or under ``accelerate launch``.

The round config's ``launch`` section (hardware) decides: ``in_process`` calls the stage's Python
entry point directly; ``accelerate`` writes the stage's typed config to YAML and runs
``accelerate launch --config_file <launch config> --num_processes N -m herd.<stage> --config ...``,
the same command a user would type, so multi-GPU FSDP runs take exactly the tested path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from herd.core.artifacts import atomic_write_text
from herd.core.config import to_dict

#: Stage -> (python entry point, ``-m`` module for accelerate launch).
ENTRY = {
    "sft": ("herd.sft:train_sft", "herd.sft"),
    "warm_start": ("herd.sft:train_sft", "herd.sft"),
    "control": ("herd.sft:train_sft", "herd.sft"),
    "dpo": ("herd.preference:train_dpo", "herd.preference.dpo"),
    "reward": ("herd.preference:train_reward", "herd.preference.reward"),
}


class LaunchError(RuntimeError):
    """A launched training process failed; the message points at its log."""


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accelerate_command(stage: str, config_file: Path, launch) -> list[str]:
    """The ``accelerate launch`` command line for one stage."""
    import torch

    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if launch.config_file:
        cmd += ["--config_file", str(launch.config_file)]
    cmd += ["--num_processes", str(launch.num_processes)]
    if launch.num_processes > 1:
        cmd += ["--main_process_port", str(launch.main_process_port or free_port())]
    if not torch.cuda.is_available():
        # GPU launch configs ask for bf16; on CPU accelerate falls back to gloo DDP in float32.
        cmd += ["--mixed_precision", "no"]
    return cmd + ["-m", ENTRY[stage][1], "--config", str(config_file)]


def train(stage: str, stage_cfg, launch, logs_dir: Path) -> None:
    """Train ``stage`` with ``stage_cfg`` (a typed stage config); raises on failure."""
    if launch.mode == "in_process":
        module, fn = ENTRY[stage][0].split(":")
        import importlib

        getattr(importlib.import_module(module), fn)(stage_cfg)
        return
    out = Path(stage_cfg.output_dir)
    config_file = out.parent / f"{out.name}.launch.yaml"
    atomic_write_text(config_file, yaml.safe_dump(to_dict(stage_cfg), sort_keys=False))
    logs_dir.mkdir(parents=True, exist_ok=True)
    log_file = logs_dir / f"{out.parent.name}.{out.name}.log"
    cmd = accelerate_command(stage, config_file, launch)
    env = dict(os.environ)
    with open(log_file, "a", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise LaunchError(f"{stage} under accelerate launch exited with {proc.returncode}; log {log_file}:\n" + "\n".join(tail))
