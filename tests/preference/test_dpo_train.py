"""DPO training end to end on the tiny model: the margin rises, runs are reproducible, the
output is a finished HF directory, and the CLI parses the same config."""

from __future__ import annotations

import json

import pytest
import torch

from herd.core.models import load_causal_lm
from herd.preference import DPOStageConfig, train_dpo
from herd.preference.data import PreferenceDataConfig
from herd.preference.dpo import build_trainer
from herd.preference.losses import dpo_sigmoid_loss, sequence_logps
from tests.preference.helpers import per_token_logps


def _cfg(tiny_kit, pairs_file, out, **kw) -> DPOStageConfig:
    base = dict(
        model=str(tiny_kit["policy"]), output_dir=str(out), data=PreferenceDataConfig(str(pairs_file)),
        batch_size=4, max_steps=3, learning_rate=2e-3, gradient_checkpointing=False, logging_steps=1,
    )
    return DPOStageConfig(**(base | kw))


def _margins(policy, reference, trainer) -> torch.Tensor:
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    lp, m = per_token_logps(policy, batch)
    ref, _ = per_token_logps(reference, batch)
    pc, pr = sequence_logps(lp, m).chunk(2)
    rc, rr = sequence_logps(ref, m).chunk(2)
    _, chosen_r, rejected_r = dpo_sigmoid_loss(pc, pr, rc, rr, beta=0.1)
    return chosen_r - rejected_r


def test_dpo_steps_raise_the_margin(tmp_path, tiny_kit, pairs_file):
    out = train_dpo(_cfg(tiny_kit, pairs_file, tmp_path / "a"))
    assert {"config.json", "model.safetensors", "tokenizer.json", "metrics.json"} <= {p.name for p in out.iterdir()}
    assert not (tmp_path / ".a.work").exists()  # checkpoints removed once published
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["pairs"] == 24

    initial = load_causal_lm(str(tiny_kit["policy"]))
    trained = load_causal_lm(str(out))
    trainer, _ = build_trainer(_cfg(tiny_kit, pairs_file, tmp_path / "probe"))
    before = _margins(initial, initial, trainer)
    after = _margins(trained, initial, trainer)
    assert torch.all(before == 0)
    assert after.mean() > 0.3 and (after > 0).float().mean() == 1.0


@pytest.mark.slow
def test_same_seed_and_data_give_the_same_weights(tmp_path, tiny_kit, pairs_file):
    a = load_causal_lm(str(train_dpo(_cfg(tiny_kit, pairs_file, tmp_path / "a")))).state_dict()
    b = load_causal_lm(str(train_dpo(_cfg(tiny_kit, pairs_file, tmp_path / "b")))).state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_cli_runs_the_stage_from_yaml_with_overrides(tmp_path, tiny_kit, pairs_file):
    from herd.loop.cli import main

    cfg = tmp_path / "dpo.yaml"
    cfg.write_text(
        f"model: {tiny_kit['policy']}\noutput_dir: {tmp_path / 'cli'}\ndata: {{path: {pairs_file}}}\n"
        "batch_size: 4\nmax_steps: 1\ngradient_checkpointing: false\n"
    )
    assert main(["dpo", "--config", str(cfg), "beta=0.2", "nll_weight=0"]) == 0
    saved = json.loads((tmp_path / "cli" / "herd_config.json").read_text())
    assert saved["beta"] == 0.2 and saved["nll_weight"] == 0
    assert main(["dpo", "--config", str(cfg), "betta=0.2"]) == 2  # unknown key -> clear error, exit 2
    assert main(["dpo", "--config", str(cfg), "reference=lora_base"]) == 2  # needs a lora section
