"""Batches of packed rows for attention kernels without variable-length support (sdpa, eager).

With flash-attention, packed rows are flattened into one padding-free sequence and the kernel
gets cumulative sequence lengths (TRL's own collator does that). Without it, a flattened batch
would make sdpa attend over the whole batch as one (B·L)² block. Here each packed row stays a
row, rows are right-padded to the longest in the batch, and position ids restart at 0 for every
conversation. No 2-D attention mask is passed: transformers then derives a block-diagonal causal
mask from the position ids (``masking_utils.find_packed_sequence_indices``), so a token attends
only to earlier tokens of its own conversation, exactly as if the conversation were alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


def packed_position_ids(seq_lengths: list[int], total: int) -> torch.Tensor:
    """Positions restarting at 0 per conversation; padding up to ``total`` is its own segment.

    >>> packed_position_ids([3, 2], 7).tolist()
    [0, 1, 2, 0, 1, 0, 1]
    """
    parts = [torch.arange(n) for n in seq_lengths]
    used = sum(seq_lengths)
    if total > used:
        parts.append(torch.arange(total - used))
    return torch.cat(parts)


@dataclass
class PackedRowsCollator:
    """``[{"input_ids", "labels", "seq_lengths"}] -> {"input_ids", "labels", "position_ids"}``, each (B, L)."""

    pad_token_id: int

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
        positions = torch.empty((len(examples), width), dtype=torch.long)
        for i, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[i, :n] = torch.as_tensor(e["input_ids"])
            labels[i, :n] = torch.as_tensor(e["labels"])
            positions[i] = packed_position_ids(list(e.get("seq_lengths") or [n]), width)
        return {"input_ids": ids, "labels": labels, "position_ids": positions}
