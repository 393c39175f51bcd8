"""Preference losses as pure tensor functions.

These are the definitions herd's tests hold TRL's trainers to: the DPO trainer runs TRL's
DPOTrainer and the reward trainer TRL's RewardTrainer, and tests check that what they compute
on a batch equals these functions on the same batch (with herd's token mask). Keeping the
equations here, separate from any trainer, makes the recipe readable and checkable.

Notation: B = batch of pairs, T = sequence length (tokens).
"""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F


class RewardLoss(str, Enum):
    """Reward-model objectives."""

    BRADLEY_TERRY = "bradley_terry"
    """Llama 3 (§4.1.2): ``-log σ(r_c - r_r)``, no margin term."""
    MARGIN = "margin"
    """Llama 2 (Touvron et al. 2023, eq. 2): ``-log σ(r_c - r_r - m)`` with a per-pair margin m."""


class DPOLoss(str, Enum):
    """DPO objectives herd exposes (names are TRL 1.16's ``loss_type`` values)."""

    SIGMOID = "sigmoid"
    """Rafailov et al. 2023, eq. 7."""
    IPO = "ipo"
    """Azar et al. 2023, eq. 17 (TRL's implementation)."""


def sequence_logps(per_token_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of per-token log-probs over the masked tokens.

    per_token_logps: [B, T] log p(token_t | tokens_<t); mask: [B, T] (1 = counted). Returns [B].
    With the Llama 3 mask, header and termination tokens have mask 0 and add nothing.
    """
    return (per_token_logps * mask.to(per_token_logps.dtype)).sum(dim=-1)


def dpo_sigmoid_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair DPO loss (Rafailov et al. 2023, eq. 7), and the implicit rewards.

        L = -log σ( β [ (log π(y_c|x) - log π_ref(y_c|x)) - (log π(y_r|x) - log π_ref(y_r|x)) ] )

    All inputs are [B] sequence log-probs (sums over the response tokens the mask keeps).
    Returns ``(losses [B], chosen_rewards [B], rejected_rewards [B])`` where a reward is
    ``β (log π - log π_ref)`` (§5 of the paper), the quantity whose chosen-minus-rejected
    "margin" DPO training should raise.
    """
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    losses = -F.logsigmoid(chosen_rewards - rejected_rewards)
    return losses, chosen_rewards, rejected_rewards


def chosen_nll_loss(chosen_per_token_logps: torch.Tensor, chosen_mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the chosen response tokens (Llama 3 §4.1.4's NLL term).

    chosen_per_token_logps: [B, T]; chosen_mask: [B, T]. Returns a scalar: the mean over every
    masked token of the batch (token-weighted, as TRL's ``"sft"`` loss type computes it, so
    long responses count more than short ones).
    """
    m = chosen_mask.bool()
    return -chosen_per_token_logps[m].mean()


def llama3_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    chosen_per_token_logps: torch.Tensor,
    chosen_mask: torch.Tensor,
    beta: float = 0.1,
    nll_weight: float = 0.2,
) -> torch.Tensor:
    """The Llama 3 DPO objective (§4.1.4): mean DPO loss + ``nll_weight`` × chosen NLL.

    Sequence log-probs are [B]; per-token chosen log-probs and mask are [B, T], and they must
    come from the same (formatting-masked) mask as the sequence sums. Returns a scalar.
    Equivalent to TRL 1.16's ``loss_type=["sigmoid", "sft"]``, ``loss_weights=[1, nll_weight]``.
    """
    losses, _, _ = dpo_sigmoid_loss(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta
    )
    loss = losses.mean()
    if nll_weight:
        loss = loss + nll_weight * chosen_nll_loss(chosen_per_token_logps, chosen_mask)
    return loss


def reward_pair_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
    kind: RewardLoss = RewardLoss.BRADLEY_TERRY,
) -> torch.Tensor:
    """Per-pair reward-model loss. chosen/rejected rewards and margin: [B]. Returns [B].

    Bradley-Terry (Llama 3 §4.1.2): ``-log σ(r_c - r_r)``.
    Margin (Llama 2 eq. 2): ``-log σ(r_c - r_r - m)``; a larger m demands a larger gap for
    pairs the annotators found clearly different.
    """
    diff = chosen_rewards - rejected_rewards
    if RewardLoss(kind) is RewardLoss.MARGIN:
        if margin is None:
            raise ValueError("the margin loss needs a margin per pair")
        diff = diff - margin
    return -F.logsigmoid(diff)
