"""The loss functions against values derived by hand."""

from __future__ import annotations

import math

import pytest
import torch

from herd.preference.losses import (
    RewardLoss,
    chosen_nll_loss,
    dpo_sigmoid_loss,
    llama3_dpo_loss,
    reward_pair_loss,
    sequence_logps,
)


def test_dpo_sigmoid_loss_by_hand():
    """Derivation (Rafailov et al. 2023, eq. 7), β = 0.1, one pair:

    log π(y_c) = -1.0, log π_ref(y_c) = -1.5  ->  chosen reward   = 0.1 · ( 0.5) =  0.05
    log π(y_r) = -2.0, log π_ref(y_r) = -1.5  ->  rejected reward = 0.1 · (-0.5) = -0.05
    loss = -log σ(0.05 - (-0.05)) = -log σ(0.1) = log(1 + e^{-0.1}) = 0.6443966600735709

    Second pair, policy = reference: both rewards 0, loss = log 2.
    """
    losses, rc, rr = dpo_sigmoid_loss(
        torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -4.0]),
        torch.tensor([-1.5, -3.0]), torch.tensor([-1.5, -4.0]), beta=0.1,
    )
    assert losses.tolist() == pytest.approx([0.6443966600735709, math.log(2)], abs=1e-7)
    assert rc.tolist() == pytest.approx([0.05, 0.0]) and rr.tolist() == pytest.approx([-0.05, 0.0])


def test_sequence_logps_and_nll_respect_the_mask():
    """Tokens with mask 0 contribute nothing to the sum, and the NLL is a token mean over the batch:
    masked tokens of row 0: -1, -2 ; row 1: -4  ->  sums [-3, -4]; NLL = (1 + 2 + 4) / 3 = 7/3."""
    lp = torch.tensor([[-1.0, -2.0, -9.0], [-4.0, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert sequence_logps(lp, mask).tolist() == [-3.0, -4.0]
    assert chosen_nll_loss(lp, mask).item() == pytest.approx(7 / 3)


def test_llama3_loss_adds_weighted_nll():
    """mean DPO loss over the two pairs above + 0.2 · 7/3."""
    lp = torch.tensor([[-1.0, -2.0, -9.0], [-4.0, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    args = (torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -4.0]), torch.tensor([-1.5, -3.0]), torch.tensor([-1.5, -4.0]))
    expected = (0.6443966600735709 + math.log(2)) / 2 + 0.2 * 7 / 3
    assert llama3_dpo_loss(*args, lp, mask, beta=0.1, nll_weight=0.2).item() == pytest.approx(expected, abs=1e-6)
    assert llama3_dpo_loss(*args, lp, mask, nll_weight=0.0).item() == pytest.approx(expected - 0.2 * 7 / 3, abs=1e-6)


def test_reward_loss_without_and_with_margin_by_hand():
    """r_c = 2, r_r = 1.
    Llama 3 (no margin):      -log σ(1)       = log(1 + e^{-1}) = 0.31326168751822286
    Llama 2 (margin m = 1):   -log σ(1 - 1)   = log 2           = 0.6931471805599453
    Llama 2 (margin m = 0):   equals the Llama 3 loss."""
    rc, rr = torch.tensor([2.0]), torch.tensor([1.0])
    assert reward_pair_loss(rc, rr).item() == pytest.approx(0.31326168751822286)
    m = reward_pair_loss(rc, rr, torch.tensor([1.0]), RewardLoss.MARGIN)
    assert m.item() == pytest.approx(math.log(2))
    assert reward_pair_loss(rc, rr, torch.tensor([0.0]), "margin").item() == pytest.approx(0.31326168751822286)
    with pytest.raises(ValueError, match="margin"):
        reward_pair_loss(rc, rr, None, RewardLoss.MARGIN)
