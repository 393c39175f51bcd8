"""SFT training on the micro tiny model: learning, equivalences, resume, output contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from herd.sft import train_sft
from herd.sft.output import staging_dir


def losses(out: Path) -> list[float]:
    return [h["loss"] for h in json.loads((out / "metrics.json").read_text())["loss_history"]]


def test_loss_falls_and_every_parameter_changes(make_cfg, tiny_kit, load_weights):
    out = train_sft(make_cfg(max_steps=24, packing=True, per_device_batch_size=2))
    history = losses(out)
    assert len(history) == 24
    assert sum(history[-5:]) / 5 < 0.8 * sum(history[:5]) / 5
    before, after = load_weights(tiny_kit["policy"]), load_weights(out)
    assert before.keys() == after.keys()
    unchanged = [name for name in before if torch.equal(before[name], after[name])]
    assert unchanged == []
    # the output is a complete, loadable HF model dir with the chat template and the run's records
    for name in ("config.json", "tokenizer.json", "chat_template.jinja", "sft_config.yaml", "metrics.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 24 and metrics["data"]["examples"] == 16
    assert not staging_dir(out).exists() and not Path(f"{out}.checkpoints").exists()


def test_batch4_accum1_equals_batch1_accum4(make_cfg, tiny_kit, update_gap):
    """The loss is normalised over all assistant tokens of the accumulated batch, not per micro-batch."""
    a = train_sft(make_cfg("a", per_device_batch_size=4, gradient_accumulation_steps=1))
    b = train_sft(make_cfg("b", per_device_batch_size=1, gradient_accumulation_steps=4))
    assert losses(a) == pytest.approx(losses(b), rel=1e-4)
    assert update_gap(tiny_kit["policy"], a, b) < 1e-3


def test_packed_and_unpacked_give_the_same_loss_and_update(make_cfg, tiny_kit, update_gap):
    """One step over the whole data set: packing regroups tokens but must not change the loss or gradient."""
    unpacked = train_sft(make_cfg("u", max_steps=1, packing=False, per_device_batch_size=16))
    packed = train_sft(make_cfg("p", max_steps=1, packing=True, per_device_batch_size=16))
    m = json.loads((packed / "metrics.json").read_text())["data"]
    assert m["packed_rows"] < m["examples"]  # packing really merged conversations
    assert losses(packed) == pytest.approx(losses(unpacked), rel=1e-5)
    assert update_gap(tiny_kit["policy"], unpacked, packed) < 1e-3


class Kill(TrainerCallback):
    """Stands in for SIGKILL: dies right after the given step (its checkpoint, if any, is on disk)."""

    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at_step:
            raise KeyboardInterrupt("killed")


def test_resumed_run_equals_uninterrupted_run(make_cfg, load_weights):
    kw = dict(max_steps=6, save_steps=3, packing=True, per_device_batch_size=2, lr_scheduler="cosine")
    whole = train_sft(make_cfg("whole", **kw))
    cfg = make_cfg("killed", **kw)
    with pytest.raises(KeyboardInterrupt):
        train_sft(cfg, callbacks=[Kill(at_step=4)])
    assert not Path(cfg.output_dir).exists()  # no partial output
    assert (cfg.checkpoints / "checkpoint-3" / "trainer_state.json").exists()
    resumed = train_sft(cfg)
    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["resumed_from"] == "checkpoint-3"
    assert losses(resumed) == pytest.approx(losses(whole), rel=1e-6)
    ww, wr = load_weights(whole), load_weights(resumed)
    assert all(torch.equal(ww[k], wr[k]) for k in ww), "same seed + same data must give the same weights"


def test_resume_refuses_checkpoints_of_another_config(make_cfg):
    cfg = make_cfg("x", max_steps=3, save_steps=1)
    with pytest.raises(KeyboardInterrupt):
        train_sft(cfg, callbacks=[Kill(at_step=2)])
    changed = make_cfg("x", max_steps=3, save_steps=1, learning_rate=5e-4)
    with pytest.raises(ValueError, match="different config"):
        train_sft(changed)


def test_lora_trains_every_adapter_and_merges_into_a_plain_model(make_cfg, tiny_kit, load_weights):
    from herd.sft import LoraSettings

    cfg = make_cfg("lora", max_steps=3, lora=LoraSettings(r=4, alpha=8), keep_checkpoints=True, save_steps=3)
    out = train_sft(cfg)
    adapter = load_weights(cfg.checkpoints / "checkpoint-3", "adapter_model.safetensors")
    assert adapter and all("lora_" in k for k in adapter)
    assert all(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)  # B starts at zero: it moved
    before, merged = load_weights(tiny_kit["policy"]), load_weights(out)
    assert before.keys() == merged.keys() and not (out / "adapter_config.json").exists()
    changed = {k for k in before if not torch.equal(before[k], merged[k])}
    linear = {k for k in before if k.endswith("proj.weight")}
    assert changed == linear  # all-linear adapters folded in; norms/embeddings/head untouched


def test_unmerged_lora_output_is_an_adapter_dir_that_loads_on_its_base(make_cfg):
    from peft import AutoPeftModelForCausalLM

    from herd.sft import LoraSettings

    out = train_sft(make_cfg("adapter", max_steps=2, lora=LoraSettings(r=4, alpha=8, merge=False)))
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    assert (out / "chat_template.jinja").exists()
    model = AutoPeftModelForCausalLM.from_pretrained(str(out))  # the adapter finds its base via adapter_config.json
    assert any("lora_" in name for name, _ in model.named_parameters())


def test_qlora_without_gpu_is_a_clear_error_and_writes_nothing(make_cfg):
    from herd.sft import LoraSettings

    cfg = make_cfg("q", lora=LoraSettings(quantize_4bit=True))
    with pytest.raises(ValueError, match="QLoRA.*CUDA GPU and the bitsandbytes"):
        train_sft(cfg)
    assert not Path(cfg.output_dir).exists()


def test_packing_runs_padding_free_only_on_flash_attention(make_cfg, monkeypatch):
    import herd.sft.train as train

    cfg = make_cfg(packing=True)
    assert train.attention_impl(cfg) == "sdpa"  # this machine: no GPU
    monkeypatch.setattr(train, "_cuda", lambda: True)
    monkeypatch.setattr(train.importlib.util, "find_spec", lambda name: object() if name == "flash_attn" else None)
    assert train.attention_impl(cfg) == "flash_attention_2"
    assert make_cfg(attn_implementation="eager").attn_implementation == "eager"
    assert train.attention_impl(make_cfg(attn_implementation="eager")) == "eager"
