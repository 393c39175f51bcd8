"""herd's DPO objective vs TRL's DPOTrainer on the same tiny batch, and the Llama 3 token mask."""

from __future__ import annotations

import re

import pytest
import torch

from herd.core.chat import EOT
from herd.preference.dpo import DPOStageConfig, build_trainer
from herd.preference.data import PreferenceDataConfig
from herd.preference.losses import dpo_sigmoid_loss, llama3_dpo_loss, sequence_logps
from tests.preference.conftest import pref_row, write_jsonl
from tests.preference.helpers import per_token_logps

def _rows():
    two_turn = pref_row("boats") | {
        "chosen": [
            {"role": "assistant", "content": "Let me think."},
            {"role": "assistant", "content": "Boats float because they displace water."},
        ]
    }
    return [pref_row("llamas"), two_turn, pref_row("tea"), pref_row("maps")]


def _trainer(tmp_path, tiny_kit, other_policy, mask: bool, nll: float):
    data = write_jsonl(tmp_path / f"p{mask}{nll}.jsonl", _rows())
    cfg = DPOStageConfig(
        model=str(tiny_kit["policy"]), output_dir=str(tmp_path / "out"), data=PreferenceDataConfig(str(data)),
        reference="path", reference_path=str(other_policy), mask_formatting_tokens=mask, nll_weight=nll,
        gradient_checkpointing=False, batch_size=4,
    )
    trainer, _ = build_trainer(cfg)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    return trainer, batch


def _loss(trainer, batch) -> float:
    trainer.model.eval()
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, dict(batch)).item()


def test_trl_loss_equals_herd_dpo_loss_without_mask_or_nll(tmp_path, tiny_kit, other_policy):
    """With masking and the NLL term off, TRL's loss on the batch is eq. 7 on sums of our own
    forward-pass log-probs over TRL's completion tokens; with a reference that differs from the
    policy, so the value is far from the trivial log 2."""
    trainer, batch = _trainer(tmp_path, tiny_kit, other_policy, mask=False, nll=0.0)
    lp, m = per_token_logps(trainer.model, batch)
    ref_lp, _ = per_token_logps(trainer.ref_model, batch)
    pc, pr = sequence_logps(lp, m).chunk(2)
    rc, rr = sequence_logps(ref_lp, m).chunk(2)
    expected = dpo_sigmoid_loss(pc, pr, rc, rr, beta=0.1)[0].mean().item()
    assert abs(expected - 0.6931) > 1e-3
    assert _loss(trainer, batch) == pytest.approx(expected, abs=1e-5)


def test_trl_loss_equals_llama3_loss_with_mask_and_nll(tmp_path, tiny_kit, other_policy):
    trainer, batch = _trainer(tmp_path, tiny_kit, other_policy, mask=True, nll=0.2)
    lp, m = per_token_logps(trainer.model, batch)
    ref_lp, _ = per_token_logps(trainer.ref_model, batch)
    pc, pr = sequence_logps(lp, m).chunk(2)
    rc, rr = sequence_logps(ref_lp, m).chunk(2)
    expected = llama3_dpo_loss(pc, pr, rc, rr, lp.chunk(2)[0], m.chunk(2)[0], beta=0.1, nll_weight=0.2)
    assert _loss(trainer, batch) == pytest.approx(expected.item(), abs=1e-5)


def _format_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of formatting in a completion: whole headers (start, role, end, blank
    line) and terminators -- found in the text, independently of the token-level mask code."""
    pattern = r"<\|start_header_id\|>.*?<\|end_header_id\|>\n\n|<\|eot_id\|>|<\|eom_id\|>|<\|end_of_text\|>"
    return [m.span() for m in re.finditer(pattern, text)]


def test_formatting_tokens_carry_zero_weight_token_by_token(tmp_path, tiny_kit, other_policy, tiny_tokenizer):
    trainer, batch = _trainer(tmp_path, tiny_kit, other_policy, mask=True, nll=0.2)
    _, plain = _trainer(tmp_path, tiny_kit, other_policy, mask=False, nll=0.2)
    ids, cm, response = batch["input_ids"], batch["completion_mask"], plain["completion_mask"]
    seen_header = 0
    for row in range(ids.shape[0]):
        positions = [t for t in range(ids.shape[1]) if response[row, t]]
        assert all(cm[row, t] == 0 for t in range(ids.shape[1]) if not response[row, t])  # prompt, padding
        pieces = [tiny_tokenizer.decode([int(ids[row, t])]) for t in positions]
        text = "".join(pieces)
        spans = _format_spans(text)
        start = 0
        for t, piece in zip(positions, pieces):
            end = start + len(piece)
            is_format = any(a <= start and end <= b for a, b in spans)
            assert cm[row, t] == (0 if is_format else 1), (row, t, piece)
            start = end
        seen_header += sum(text[a:b].startswith("<|start_header_id|>") for a, b in spans)
    assert seen_header == 1  # the two-turn chosen response has one inner header, masked as a whole


def test_masked_eot_does_not_change_the_loss(tmp_path, tiny_kit, other_policy, tiny_tokenizer):
    """Replacing each response's final <|eot_id|> leaves the masked loss (sigmoid + NLL) unchanged
    and changes the unmasked one: the masked token really has zero weight in every term."""
    eot = tiny_tokenizer.convert_tokens_to_ids(EOT)
    other = tiny_tokenizer.convert_tokens_to_ids(".")
    for mask, should_change in ((True, False), (False, True)):
        trainer, batch = _trainer(tmp_path, tiny_kit, other_policy, mask=mask, nll=0.2)
        before = _loss(trainer, batch)
        swapped = dict(batch)
        swapped["input_ids"] = batch["input_ids"].clone()
        for row in range(batch["input_ids"].shape[0]):
            last = int(batch["attention_mask"][row].sum()) - 1
            assert swapped["input_ids"][row, last] == eot
            swapped["input_ids"][row, last] = other
        after = _loss(trainer, swapped)
        assert (abs(after - before) > 1e-4) == should_change, (mask, before, after)
