"""The `herd` command: help lists subcommands; user errors exit non-zero with a clear message."""

from __future__ import annotations

import subprocess
import sys

from herd.loop.cli import build_parser, main


def test_help_lists_subcommands(capsys):
    parser = build_parser()
    text = parser.format_help()
    for name in ("tiny", "generate"):
        assert name in text


def test_console_script_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "herd.loop.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "tiny" in out.stdout


def test_tiny_command_builds_loadable_dirs(tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    assert main(["tiny", "--out", str(tmp_path / "kit")]) == 0
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "kit" / "policy")
    assert model.config.head_dim == 64


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    code = main(["generate", "--model", str(tmp_path / "nope"), "--prompt", "hi", "--backend", "hf"])
    assert code == 2
    assert "not a Hugging Face model directory" in capsys.readouterr().err
