"""SFT test helpers: a small real chat file (HH-RLHF chosen dialogues) and config builders."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

HH = Path(__file__).resolve().parents[2] / "data" / "hh-rlhf-harmless" / "test.jsonl.gz"


def hh_conversations(n: int, max_chars: int = 500) -> list[list[dict]]:
    """The first ``n`` usable HH-RLHF chosen dialogues no longer than ``max_chars`` (fast tests)."""
    from herd.core.chat_data import check_messages, hh_to_messages

    out = []
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if len(row["chosen"]) > max_chars:
                continue
            messages = hh_to_messages(row)
            if check_messages(messages) is None:
                out.append(messages)
            if len(out) == n:
                break
    return out


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run SFT tests single-threaded (restored afterwards).

    The test machine is shared by many processes; two intra-op threads per process there make a
    micro-model step 10-30x slower than one thread. Results do not depend on it.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def chat_file(tmp_path_factory) -> Path:
    """16 short real conversations as a messages JSONL file."""
    path = tmp_path_factory.mktemp("sftdata") / "chats.jsonl"
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in hh_conversations(16)))
    return path


@pytest.fixture
def make_cfg(tiny_kit, chat_file, tmp_path):
    """SFTConfig for the micro tiny policy on ``chat_file``; keyword arguments override fields."""
    from herd.sft import SFTConfig

    def make(name: str = "out", **kw):
        base = dict(
            model=str(tiny_kit["policy"]), data=[str(chat_file)], output_dir=str(tmp_path / name),
            max_steps=4, learning_rate=1e-3, lr_scheduler="constant", per_device_batch_size=4,
            max_length=256, packing=False, save_steps=1000, seed=0,
        )
        base.update(kw)
        return SFTConfig(**base)

    return make


def _load_weights(model_dir, name: str = "model.safetensors") -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(model_dir) / name))


@pytest.fixture
def load_weights():
    """``load_weights(dir, name="model.safetensors") -> {tensor name: tensor}``."""
    return _load_weights


@pytest.fixture
def update_gap(load_weights):
    """``update_gap(base, a, b)``: the largest ||Δa - Δb|| / ||Δa|| over tensors, Δ = trained - base.

    Compares what two runs did to the weights. Raw element-wise tolerances do not work with Adam:
    its first steps move every weight by about ±lr whatever the gradient's size, so float noise in
    a near-zero gradient becomes an lr-sized difference in that one element.
    """

    def gap(base, a, b) -> float:
        w0, wa, wb = load_weights(base), load_weights(a), load_weights(b)
        worst = 0.0
        for k in w0:
            da, db = wa[k] - w0[k], wb[k] - w0[k]
            if da.norm() > 0:
                worst = max(worst, float((da - db).norm() / da.norm()))
        return worst

    return gap
