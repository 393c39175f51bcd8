"""Reusing the sampler's recorded log-probs as DPO reference log-probs.

Tolerance: the recorded values come from ``generate`` (left-padded batch, KV cache, fp32 on
CPU) and the check from one full-sequence forward pass (right-padded, no cache); the two agree
to float32 rounding, so sums over ≤ 16 tokens are compared at 1e-4 absolute. On GPU, vLLM in
bf16 against a bf16 forward differs more (order 1e-2 per sequence); that is a property of the
numbers, not of this code.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from herd.core.chat import render_with
from herd.core.generation import SamplingSpec
from herd.core.generation.hf import HFBackend
from herd.core.models import load_causal_lm, load_tokenizer
from herd.preference.data import PreferenceDataConfig, load_pairs
from herd.preference.dpo import DPOStageConfig, build_trainer
from herd.preference.dpo_data import build_dpo_rows
from herd.preference.losses import sequence_logps
from herd.preference.reference import sampler_is_reference
from tests.preference.conftest import TOPICS, write_jsonl
from tests.preference.helpers import per_token_logps

TOL = 1e-4


@pytest.fixture(scope="module")
def sampled_file(tiny_kit, tmp_path_factory):
    """Pairs from two temperature-1 samples per prompt of the tiny policy, with their records."""
    policy = str(tiny_kit["policy"])
    tok = load_tokenizer(policy)
    prompts = [[{"role": "user", "content": f"Tell me about {t}."}] for t in TOPICS[:6]]
    backend = HFBackend(policy, batch_size=6)
    spec = SamplingSpec(n=2, temperature=1.0, max_new_tokens=12, seed=1)
    samples = backend.generate([render_with(tok, p, add_generation_prompt=True) for p in prompts], spec)
    rows = []
    for prompt, (a, b) in zip(prompts, samples):
        if not a.text.strip() or not b.text.strip() or a.text.strip() == b.text.strip():
            continue
        rows.append({
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": a.text}],
            "rejected": [{"role": "assistant", "content": b.text}],
            "chosen_token_ids": a.token_ids, "rejected_token_ids": b.token_ids,
            "chosen_logprobs": a.logprobs, "rejected_logprobs": b.logprobs,
            "sampler_model": policy,
        })
    assert len(rows) >= 4
    return write_jsonl(tmp_path_factory.mktemp("sampled") / "pairs.jsonl", rows)


def test_recorded_logprobs_agree_with_a_reference_forward_pass(tiny_kit, sampled_file, tmp_path):
    cfg = DPOStageConfig(
        model=str(tiny_kit["policy"]), output_dir=str(tmp_path / "o"), data=PreferenceDataConfig(str(sampled_file)),
        gradient_checkpointing=False, batch_size=8,
    )
    trainer, report = build_trainer(cfg)
    assert report.reused_ref_logps and report.recorded_ids == len(trainer.train_dataset)
    assert trainer.ref_model is None  # no reference model loaded at all
    ds = trainer.train_dataset
    batch = trainer.data_collator([ds[i] for i in range(len(ds))])
    lp, mask = per_token_logps(load_causal_lm(str(tiny_kit["policy"])), batch)
    fwd_c, fwd_r = sequence_logps(lp, mask).chunk(2)
    assert torch.allclose(batch["ref_chosen_logps"].float(), fwd_c, atol=TOL, rtol=0)
    assert torch.allclose(batch["ref_rejected_logps"].float(), fwd_r, atol=TOL, rtol=0)
    # The completion is the recorded ids, not a re-tokenization of the text.
    first = [r for r in map(dict, ds)][0]
    recorded = json.loads(sampled_file.read_text().splitlines()[0])["chosen_token_ids"]
    assert first["chosen_ids"] == recorded
    # At step 0 the policy is the reference, so TRL's loss is log 2 + 0.2 · NLL on reused values.
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch)).item()
    nll = -(lp.chunk(2)[0][mask.chunk(2)[0].bool()]).mean().item()
    assert loss == pytest.approx(0.6931471805599453 + 0.2 * nll, abs=1e-4)


def test_reuse_only_when_the_sampler_is_the_reference(tiny_kit, other_policy, sampled_file, tmp_path):
    pairs, _ = load_pairs(sampled_file)
    policy = str(tiny_kit["policy"])
    assert sampler_is_reference(pairs, policy)
    copy = tmp_path / "copied_policy"
    shutil.copytree(policy, copy)
    assert sampler_is_reference(pairs, str(copy))  # same weights elsewhere on disk
    assert not sampler_is_reference(pairs, str(other_policy))
    tok = load_tokenizer(policy)
    rows, report = build_dpo_rows(pairs, tok, reuse_ref_logps=True, max_length=8)
    assert not report.reused_ref_logps and "exceed max_length" in report.reuse_note
    assert all("ref_chosen_logps" not in r for r in rows)
