"""Entry points and shipped YAML: every recipe parses, bad configs fail clearly, multi-process runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from herd.core.config import ConfigError, load_config
from herd.loop.config import Launch
from herd.loop.launch import accelerate_command
from herd.sft import SFTConfig

REPO = Path(__file__).resolve().parents[2]
LAUNCH_CONFIGS = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))
STAGE_CONFIGS = sorted((REPO / "recipes" / "sft").glob("*.yaml"))


@pytest.mark.parametrize("path", LAUNCH_CONFIGS, ids=lambda p: p.name)
def test_launch_configs_parse_with_accelerates_own_loader(path):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(path))
    assert cfg.num_processes >= 1 and cfg.mixed_precision == "bf16"


def test_launch_config_set_is_complete_and_fsdp_is_fsdp2_full_shard():
    from accelerate.commands.config.config_args import load_config_from_file

    assert {p.stem for p in LAUNCH_CONFIGS} >= {"single", "ddp", "fsdp"}
    fsdp = load_config_from_file(str(REPO / "recipes" / "accelerate" / "fsdp.yaml"))
    assert fsdp.distributed_type == "FSDP"
    assert fsdp.fsdp_config["fsdp_version"] == 2
    assert fsdp.fsdp_config["fsdp_reshard_after_forward"] is True  # FULL_SHARD
    assert fsdp.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    assert fsdp.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"


@pytest.mark.parametrize("path", STAGE_CONFIGS, ids=lambda p: p.name)
def test_stage_configs_parse_into_sftconfig(path):
    cfg = load_config(SFTConfig, path)
    assert cfg.data and cfg.output_dir


def test_stage_config_defaults_are_the_llama3_recipe():
    cfg = SFTConfig(model="m", data=["d.jsonl"], output_dir="o")
    assert cfg.learning_rate == 1e-5 and cfg.train_on == "all"
    assert cfg.bad_rows == "fail" and cfg.lora is None


def test_unknown_and_mistyped_keys_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\ndata: [d.jsonl]\noutput_dir: o\nsave_step: 8\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: save_step: unknown key \(did you mean 'save_steps'\?\)"):
        load_config(SFTConfig, bad)
    # inside the optional lora block the error names the inner key
    bad.write_text("model: m\ndata: [d.jsonl]\noutput_dir: o\nlora:\n  rank: 8\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: lora\.rank: unknown key \(known keys: r, alpha"):
        load_config(SFTConfig, bad)
    bad.write_text("model: m\ndata: [d.jsonl]\noutput_dir: o\npacking: maybe\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: packing: expected true/false"):
        load_config(SFTConfig, bad)


def test_module_entry_point_exits_nonzero_with_a_one_line_error(tmp_path, capsys):
    from herd.sft.cli import main

    bad = tmp_path / "typo.yaml"
    bad.write_text("model: m\ndata: [d.jsonl]\noutput_dir: o\nlearning_rat: 1e-5\n")
    assert main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "typo.yaml: learning_rat: unknown key (did you mean 'learning_rate'?)" in err
    assert "Traceback" not in err


def test_herd_sft_runs_with_overrides_and_reports_bad_rows(tiny_kit, chat_file, tmp_path, capsys):
    """``herd sft --config X key=value``: overrides apply; a malformed row stops the run by file and line."""
    from herd.loop.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({
        "model": str(tiny_kit["policy"]), "data": [str(chat_file)], "output_dir": str(tmp_path / "out"),
        "max_steps": 50, "max_length": 128, "per_device_batch_size": 4,
    }))
    assert main(["sft", "--config", str(cfg), "max_steps=2", "lora.r=4"]) == 0
    saved = yaml.safe_load((tmp_path / "out" / "sft_config.yaml").read_text())
    assert saved["max_steps"] == 2 and saved["lora"]["r"] == 4
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["steps"] == 2

    broken = tmp_path / "broken.jsonl"
    lines = chat_file.read_text().splitlines()
    lines.insert(2, json.dumps({"messages": [{"role": "narrator", "content": "x"}]}))
    broken.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["sft", "--config", str(cfg), f"data=[{broken}]", f"output_dir={tmp_path / 'o2'}"]) == 2
    assert f"{broken}: line 3: unknown role" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


@pytest.mark.slow
def test_two_process_cpu_run_saves_one_model_equal_to_one_process(tiny_kit, chat_file, tmp_path, load_weights):
    """accelerate launch with the DDP recipe, 2 CPU processes (gloo): one output, and 2 x batch 2 == 1 x batch 4."""
    base = {"model": str(tiny_kit["policy"]), "data": [str(chat_file)], "max_steps": 3, "learning_rate": 1e-3,
            "max_length": 256, "save_steps": 2}
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump({**base, "output_dir": str(tmp_path / "ddp"), "per_device_batch_size": 2}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    # The command the round runner types (launch.mode: accelerate): free port, CPU precision.
    cmd = accelerate_command("sft", cfg, Launch(mode="accelerate", config_file=str(REPO / "recipes/accelerate/ddp.yaml"), num_processes=2))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("sft: wrote") == 1
    out = tmp_path / "ddp"
    assert json.loads((out / "metrics.json").read_text())["num_processes"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("ddp", ".ddp"))) == ["ddp", "ddp.yaml"]

    from herd.sft import train_sft

    single = train_sft(SFTConfig(**base, output_dir=str(tmp_path / "single"), per_device_batch_size=4))
    w0, wd, ws = load_weights(tiny_kit["policy"]), load_weights(out), load_weights(single)
    for k in w0:
        assert float((wd[k] - ws[k]).norm() / (ws[k] - w0[k]).norm()) < 1e-3, k


@pytest.mark.slow
def test_sigkilled_run_resumes_on_rerun_and_matches_an_uninterrupted_run(tiny_kit, chat_file, tmp_path, update_gap):
    """A real SIGKILL mid-run: no output appears; the same command again resumes and ends where an
    uninterrupted run ends."""
    import time

    from herd.sft import train_sft

    base = {"model": str(tiny_kit["policy"]), "data": [str(chat_file)], "max_steps": 20, "save_steps": 3,
            "per_device_batch_size": 2, "learning_rate": 1e-3, "max_length": 256}
    cfg = tmp_path / "run.yaml"
    out = tmp_path / "out"
    cfg.write_text(yaml.safe_dump({**base, "output_dir": str(out)}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "herd.sft", "--config", str(cfg)]
    first_ckpt = tmp_path / "out.checkpoints" / "checkpoint-3" / "trainer_state.json"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not first_ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert first_ckpt.exists() and not out.exists(), "the run must be killed between its first checkpoint and its end"

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"].startswith("checkpoint-") and metrics["steps"] == 20

    whole = train_sft(SFTConfig(**base, output_dir=str(tmp_path / "whole")))
    assert update_gap(tiny_kit["policy"], whole, out) < 1e-5
