"""Model averaging (Llama 3 §4.1.5): the average of checkpoints, weight by weight."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from herd.core.averaging import average_checkpoints


def _ckpt(d, value, shape=(2, 3)):
    d.mkdir()
    save_file({"w": torch.full(shape, float(value)), "b": torch.tensor([value], dtype=torch.float32)}, str(d / "model.safetensors"))
    (d / "config.json").write_text("{}")
    return d


def test_uniform_and_weighted_average(tmp_path):
    a, b, c = _ckpt(tmp_path / "a", 1.0), _ckpt(tmp_path / "b", 2.0), _ckpt(tmp_path / "c", 6.0)
    out = average_checkpoints([a, b, c], tmp_path / "u")
    assert torch.allclose(load_file(out / "model.safetensors")["w"], torch.full((2, 3), 3.0))
    assert (out / "config.json").exists()
    out = average_checkpoints([a, b], tmp_path / "w", weights=[3, 1])
    assert torch.allclose(load_file(out / "model.safetensors")["b"], torch.tensor([1.25]))


def test_real_models_average_is_elementwise_mean(tmp_path, tiny_kit):
    from herd.core.tiny import build_models

    other = build_models(tmp_path / "other", tokenizer=None, seed=3, reward_model=False)["policy"]
    out = average_checkpoints([tiny_kit["policy"], other], tmp_path / "avg")
    x, y, z = (load_file(p / "model.safetensors") for p in (tiny_kit["policy"], other, out))
    for k in x:
        torch.testing.assert_close(z[k], (x[k] + y[k]) / 2)


def test_mismatched_shapes_are_refused(tmp_path):
    a, b = _ckpt(tmp_path / "a", 1.0), _ckpt(tmp_path / "b", 1.0, shape=(3, 3))
    with pytest.raises(ValueError, match="shape"):
        average_checkpoints([a, b], tmp_path / "o")
    with pytest.raises(ValueError, match="weights"):
        average_checkpoints([a, a], tmp_path / "o", weights=[1.0])
