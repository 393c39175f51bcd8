"""Checkpoint averaging (Llama 3 §4.1.5): uniform or weighted means of same-shaped models.

Llama 3 averages models from runs with different data versions or hyperparameters at the RM,
SFT and DPO stages. Averaging happens on the saved tensors (safetensors), so it works for causal
LMs and reward models alike, without loading a model class.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import load_file, save_file


def _weights_files(model_dir: Path) -> list[Path]:
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no *.safetensors weights to average")
    return files


def average_checkpoints(
    model_dirs: Sequence[Path | str], out_dir: Path | str, weights: Sequence[float] | None = None
) -> Path:
    """Write the (weighted) average of ``model_dirs`` to ``out_dir``.

    Weights are normalized to sum to 1; ``None`` means uniform. Non-weight files (config,
    tokenizer, chat template) are copied from the first checkpoint. Tensors are averaged in
    float32 and cast back to their stored dtype.
    """
    dirs = [Path(d) for d in model_dirs]
    if len(dirs) < 1:
        raise ValueError("averaging needs at least one checkpoint")
    w = [1.0] * len(dirs) if weights is None else [float(x) for x in weights]
    if len(w) != len(dirs):
        raise ValueError(f"{len(w)} weights for {len(dirs)} checkpoints")
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"averaging weights must be non-negative with a positive sum, got {w}")
    total = sum(w)
    w = [x / total for x in w]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in _weights_files(dirs[0])]
    for d in dirs[1:]:
        if [f.name for f in _weights_files(d)] != names:
            raise ValueError(f"{d}: weight files differ from {dirs[0]}; checkpoints must share a shape")
    for name in names:
        tensors = [load_file(d / name) for d in dirs]
        keys = tensors[0].keys()
        for d, t in zip(dirs, tensors):
            if t.keys() != keys:
                raise ValueError(f"{d / name}: tensor names differ from {dirs[0] / name}")
        averaged = {}
        for key in keys:
            acc = torch.zeros_like(tensors[0][key], dtype=torch.float32)
            for weight, t in zip(w, tensors):
                if t[key].shape != acc.shape:
                    raise ValueError(f"{key}: shape {tuple(t[key].shape)} != {tuple(acc.shape)}")
                acc += weight * t[key].float()
            averaged[key] = acc.to(tensors[0][key].dtype).contiguous()
        save_file(averaged, str(out / name), metadata={"format": "pt"})
    for f in dirs[0].iterdir():
        if f.is_file() and not f.name.endswith(".safetensors") and f.name != "manifest.json":
            shutil.copy2(f, out / f.name)
    return out
