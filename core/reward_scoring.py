"""Reward-model scoring: conversations in, one float each out (a :class:`~herd.core.scoring.Scorer`).

Rejection sampling picks the best of K samples with it, evaluation reports mean reward with it,
and curation filters with it, so all three must see the reward model exactly as it was trained.
That is why rendering lives here, shared by the reward trainer (herd.preference) and the scorer:
each conversation is rendered with the reward model's OWN tokenizer and template, which need not
be the policy's (an encoder reward model has no Llama 3 special tokens at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch

from herd.core.chat import BOS, Conversation, render, render_with, validate_conversation


def _has_llama3_specials(tokenizer) -> bool:
    vocab = tokenizer.get_vocab()
    return all(t in vocab for t in ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"))


def render_for_reward(tokenizer, conversation: Conversation) -> str:
    """The text a reward model reads for ``conversation``.

    * the tokenizer ships a chat template -> that template (what the checkpoint was trained on);
    * a Llama 3 vocabulary without a template -> the built-in Llama 3 rendering;
    * anything else (e.g. a BERT-style encoder) -> plain ``Role: content`` paragraphs, because
      Llama 3 header tokens would be split into meaningless word pieces there.
    """
    if getattr(tokenizer, "chat_template", None) or _has_llama3_specials(tokenizer):
        return render_with(tokenizer, conversation)
    validate_conversation(conversation)
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content'].strip()}" for m in conversation)


def encode_for_reward(tokenizer, conversation: Conversation, max_length: int | None = None) -> list[int]:
    """Token ids for the reward model; over-long conversations keep their END (the response).

    Rendered chat-template text already carries BOS, so special tokens are only added for the
    plain rendering (an encoder wants its [CLS] ... [SEP]).
    """
    text = render_for_reward(tokenizer, conversation)
    templated = text.startswith(BOS) or bool(getattr(tokenizer, "chat_template", None))
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    try:
        ids = tokenizer(
            text,
            add_special_tokens=not templated,
            truncation=max_length is not None,
            max_length=max_length,
        )["input_ids"]
    finally:
        tokenizer.truncation_side = side
    return ids


class RewardModelScorer:
    """Scores conversations with a scalar-head sequence classifier (any HF reward model dir).

    Batches are formed from conversations sorted by token length (less padding, and memory that
    grows predictably); scores come back in the caller's order. Right padding with an attention
    mask, so the classifier reads its last real token.
    """

    def __init__(
        self,
        model_path: str | Path,
        batch_size: int = 16,
        max_length: int = 2048,
        sort_by_length: bool = True,
        device: str | None = None,
        name: str | None = None,
        model=None,
        tokenizer=None,
    ):
        from herd.core.models import ModelSpec, load_reward_model, load_tokenizer

        self.model_path = str(model_path)
        self.name = name or f"reward:{Path(self.model_path).name}"
        self.tokenizer = tokenizer or load_tokenizer(self.model_path)
        self.model = model if model is not None else load_reward_model(ModelSpec(self.model_path, device=device))
        self.model.eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.sort_by_length = sort_by_length

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        return [encode_for_reward(self.tokenizer, c, self.max_length) for c in conversations]

    @torch.no_grad()
    def score_ids(self, encoded: Sequence[Sequence[int]]) -> list[float]:
        """Scores of already-encoded sequences (the reward trainer's evaluation uses this)."""
        order = list(range(len(encoded)))
        if self.sort_by_length:
            order.sort(key=lambda i: len(encoded[i]))
        pad = self.tokenizer.pad_token_id
        scores = [0.0] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, : len(encoded[i])] = 1
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            for row, i in enumerate(idx):
                scores[i] = float(logits[row, 0].float())
        return scores

    def score(
        self, conversations: Sequence[Conversation], metadata: Sequence[Mapping] | None = None
    ) -> list[float]:
        """One reward per conversation (higher = better); ``metadata`` is not needed and ignored."""
        if not conversations:
            return []
        return self.score_ids(self.encode(conversations))
