"""Slower DPO paths: a killed run resumes to the same weights; LoRA against the adapter-off base."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainerCallback

from herd.core.models import load_causal_lm
from herd.preference import DPOStageConfig, LoraSettings, train_dpo
from herd.preference.data import PreferenceDataConfig
from herd.preference.dpo import build_trainer
from herd.preference.output import work_dir
from tests.preference.helpers import per_token_logps

pytestmark = pytest.mark.slow


class Kill(TrainerCallback):
    """Stands in for SIGKILL after step 3 (checkpoint-2 is on disk, step 3 is lost)."""

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == 3:
            raise KeyboardInterrupt


def _cfg(tiny_kit, pairs_file, out, **kw):
    return DPOStageConfig(
        model=str(tiny_kit["policy"]), output_dir=str(out), data=PreferenceDataConfig(str(pairs_file)),
        batch_size=4, max_steps=4, learning_rate=2e-3, gradient_checkpointing=False, save_steps=2, **kw,
    )


def test_killed_run_resumes_to_the_same_weights(tmp_path, tiny_kit, pairs_file, monkeypatch):
    full = train_dpo(_cfg(tiny_kit, pairs_file, tmp_path / "full"))

    import herd.preference.dpo as dpo

    real = dpo.build_trainer

    def killing(cfg):
        trainer, report = real(cfg)
        trainer.add_callback(Kill())
        return trainer, report

    monkeypatch.setattr(dpo, "build_trainer", killing)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train_dpo(_cfg(tiny_kit, pairs_file, cut))
    assert not cut.exists() and (work_dir(cut) / "checkpoint-2").is_dir()  # nothing half-published
    monkeypatch.setattr(dpo, "build_trainer", real)
    resumed = train_dpo(_cfg(tiny_kit, pairs_file, cut))
    a, b = load_causal_lm(str(full)).state_dict(), load_causal_lm(str(resumed)).state_dict()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=0), name


def test_lora_reference_is_the_adapter_disabled_base(tmp_path, tiny_kit, pairs_file):
    cfg = _cfg(tiny_kit, pairs_file, tmp_path / "lora", reference="lora_base", lora=LoraSettings(r=4, alpha=8),
               reuse_sampler_logprobs=False, nll_weight=0.0)
    trainer, _ = build_trainer(cfg)
    assert trainer.ref_model is None and hasattr(trainer.model, "peft_config")
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    trainer.model.eval()
    with torch.no_grad():  # fresh adapter (B = 0): policy == base, so the DPO loss is log 2
        assert trainer.compute_loss(trainer.model, dict(batch)).item() == pytest.approx(0.693147, abs=1e-5)
    out = train_dpo(cfg)
    assert not (out / "adapter_config.json").exists()  # merged into an ordinary HF model
    merged, base = load_causal_lm(str(out)), load_causal_lm(str(tiny_kit["policy"]))
    lp, m = per_token_logps(merged, batch)
    lp0, _ = per_token_logps(base, batch)
    assert not torch.allclose(lp * m, lp0 * m)  # the adapter learned something and was merged
