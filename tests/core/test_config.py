"""Strict YAML -> typed configs: unknown keys and wrong types name the file and the key path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from herd.core.config import ConfigError, load_config, to_dict


@dataclass
class Optim:
    lr: float = 1e-5
    """Learning rate."""
    schedule: Literal["cosine", "linear"] = "cosine"


@dataclass
class Stage:
    model: str
    steps: int = 10
    optim: Optim = field(default_factory=Optim)
    data: list[str] = field(default_factory=list)
    lora: Optim | None = None


def _write(tmp_path, text):
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_loads_nested_and_overrides(tmp_path):
    p = _write(tmp_path, "model: m\noptim:\n  lr: 1e-4\ndata: [a.jsonl, b.jsonl]\n")
    cfg = load_config(Stage, p, ["steps=7", "optim.schedule=linear"])
    assert cfg.optim.lr == 1e-4 and cfg.steps == 7 and cfg.optim.schedule == "linear"
    assert cfg.data == ["a.jsonl", "b.jsonl"] and cfg.lora is None
    assert to_dict(cfg)["optim"] == {"lr": 1e-4, "schedule": "linear"}


@pytest.mark.parametrize(
    "text, key, what",
    [
        ("model: m\noptim:\n  lrr: 1\n", "optim.lrr", "unknown key"),
        ("model: m\nstep: 3\n", "step", "did you mean 'steps'"),
        ("model: m\nsteps: three\n", "steps", "expected an integer"),
        ("model: m\noptim:\n  schedule: exp\n", "optim.schedule", "not one of"),
        ("model: m\ndata: a.jsonl\n", "data", "expected a list"),
        ("steps: 3\n", "model", "required key is missing"),
        ("model: m\nlora:\n  lr: x\n", "lora.lr", "expected a number"),
        ("model: m\nlora:\n  rank: 8\n", "lora.rank", "unknown key"),
    ],
)
def test_errors_name_file_and_key(tmp_path, text, key, what):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(Stage, p)
    assert str(p) in str(e.value) and key in str(e.value) and what in str(e.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Stage, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Stage, _write(tmp_path, "model: [unclosed\n"))
    with pytest.raises(ConfigError, match="override"):
        load_config(Stage, _write(tmp_path, "model: m\n"), ["steps"])
