"""Independent forward-pass log-probs, used to check what TRL computes."""

from __future__ import annotations

import torch


@torch.no_grad()
def per_token_logps(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(token_t | tokens_<t) for t >= 1 ([2B, T-1]) and the shifted completion mask."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    return lp, batch["completion_mask"][:, 1:]
