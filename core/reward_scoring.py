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

import numpy as np
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

    **Prefix sharing** (``share_prefixes=True``, the default): rejection sampling scores K
    samples of each prompt, and every one of them re-reads the prompt. For decoder-only reward
    models (transformers' ``*ForSequenceClassification`` built on a causal LM, e.g. Llama, full
    attention, eager/SDPA kernels) sequences that share a token prefix are grouped (token ids are
    compared exactly, never assumed from the conversation structure), the prefix of each group is
    run once with a KV cache, and only the members' suffixes are run against it; the score is
    read at the same token as in a full forward, so results equal the unshared path up to float
    rounding. Everything else (encoders, sliding-window models, PEFT wrappers, sequences without a
    useful shared prefix) takes the ordinary path; ``share_prefixes=False`` forces it.
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
        share_prefixes: bool = True,
        min_shared_tokens: int = 16,
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
        self.share_prefixes = share_prefixes
        self.min_shared_tokens = max(1, int(min_shared_tokens))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        return [encode_for_reward(self.tokenizer, c, self.max_length) for c in conversations]

    @torch.no_grad()
    def score_ids(self, encoded: Sequence[Sequence[int]]) -> list[float]:
        """Scores of already-encoded sequences (the reward trainer's evaluation uses this)."""
        scores = [0.0] * len(encoded)
        rest: Sequence[int] = range(len(encoded))
        if self.share_prefixes and len(encoded) > 1 and self.supports_prefix_sharing():
            seqs = [e.tolist() if hasattr(e, "tolist") else [int(t) for t in e] for e in encoded]
            groups, rest = prefix_groups(seqs, self._pad_id(), self.min_shared_tokens)
            if groups:
                try:
                    self._score_shared(seqs, groups, scores)
                except _NoSharing:
                    rest = range(len(encoded))
        self._score_full(encoded, list(rest), scores)
        return scores

    def _score_full(self, encoded: Sequence[Sequence[int]], order: list[int], scores: list[float]) -> None:
        """The ordinary path: whole sequences, right-padded, (length-sorted) batches."""
        if self.sort_by_length:
            order.sort(key=lambda i: len(encoded[i]))
        pad = self.tokenizer.pad_token_id
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

    # -- prefix sharing ---------------------------------------------------------------------

    def _pad_id(self) -> int | None:
        return getattr(self.model.config.get_text_config(), "pad_token_id", None)

    def supports_prefix_sharing(self) -> bool:
        """Whether this model can score suffixes against a cached prefix exactly: a causal LM's
        sequence classifier (pools the last non-pad token), full attention only (a sliding window
        would count the cache's padding slots as distance), an attention kernel that takes an
        arbitrary 2-D padding mask, and the same pad id in tokenizer and model config."""
        try:
            from transformers.modeling_layers import GenericForSequenceClassification
        except ImportError:  # pragma: no cover - older transformers
            return False
        if not isinstance(self.model, GenericForSequenceClassification):
            return False
        cfg = self.model.config.get_text_config()
        if getattr(cfg, "is_encoder_decoder", False):
            return False
        layer_types = getattr(cfg, "layer_types", None)
        if layer_types is not None:
            if any(t != "full_attention" for t in layer_types):
                return False
        elif getattr(cfg, "sliding_window", None) is not None and getattr(cfg, "use_sliding_window", True):
            return False
        if getattr(self.model.config, "_attn_implementation", None) not in ("eager", "sdpa"):
            return False
        pad = self._pad_id()
        return pad is not None and pad == self.tokenizer.pad_token_id

    def _score_shared(self, seqs: list[list[int]], groups: list[tuple[int, list[int]]], scores: list[float]) -> None:
        """Score the members of ``groups`` (``(prefix_len, member indices)``).

        Work goes in windows of groups (sorted by prefix length) whose cached prefixes hold at
        most ``batch_size * max_length`` token slots: the prefixes of a window run once
        (right-padded, ``batch_size`` prefixes per forward, ``use_cache=True``), then the window's
        members, sorted by suffix length, run in batches of ``batch_size`` suffixes, each row
        attending to its own group's cached prefix (gathered from the window's cache; padding
        slots masked) with position ids continuing from its prefix length.
        """
        groups = sorted(groups, key=lambda g: g[0])
        budget = max(self.batch_size * self.max_length, groups[-1][0])
        window: list[tuple[int, list[int]]] = []
        for g in groups:
            if window and (len(window) + 1) * g[0] > budget:
                self._score_window(seqs, window, scores)
                window = []
            window.append(g)
        if window:
            self._score_window(seqs, window, scores)

    def _score_window(self, seqs, window: list[tuple[int, list[int]]], scores: list[float]) -> None:
        from transformers import DynamicCache

        device, pad = self.device, self.tokenizer.pad_token_id
        width = window[-1][0]  # sorted by prefix length
        keys: list[list[torch.Tensor]] | None = None
        values: list[list[torch.Tensor]] | None = None
        for start in range(0, len(window), self.batch_size):
            chunk = window[start : start + self.batch_size]
            w = max(n for n, _ in chunk)
            ids = torch.full((len(chunk), w), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), w), dtype=torch.long)
            for row, (n, members) in enumerate(chunk):
                ids[row, :n] = torch.tensor(seqs[members[0]][:n])
                mask[row, :n] = 1
            out = self.model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=True)
            cache = out.past_key_values
            layers = _dynamic_layers(cache)
            if keys is None:
                keys, values = [[] for _ in layers], [[] for _ in layers]
            for li, layer in enumerate(layers):
                grow = width - layer.keys.shape[-2]
                keys[li].append(torch.nn.functional.pad(layer.keys, (0, 0, 0, grow)))
                values[li].append(torch.nn.functional.pad(layer.values, (0, 0, 0, grow)))
            del out, cache
        keys = [torch.cat(k) for k in keys]
        values = [torch.cat(v) for v in values]
        rows = [(i, g) for g, (_, members) in enumerate(window) for i in members]
        rows.sort(key=lambda r: len(seqs[r[0]]) - window[r[1]][0])
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            p = max(window[g][0] for _, g in batch)
            s = max(len(seqs[i]) - window[g][0] for i, g in batch)
            ids = torch.full((len(batch), s), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), p + s), dtype=torch.long)
            pos = torch.zeros((len(batch), s), dtype=torch.long)
            for row, (i, g) in enumerate(batch):
                n = window[g][0]
                suffix = seqs[i][n:]
                ids[row, : len(suffix)] = torch.tensor(suffix)
                mask[row, :n] = 1
                mask[row, p : p + len(suffix)] = 1
                pos[row] = torch.arange(n, n + s)
            gi = torch.tensor([g for _, g in batch], device=device)
            cache = DynamicCache(ddp_cache_data=[(k[gi, :, :p], v[gi, :, :p]) for k, v in zip(keys, values)])
            logits = self.model(
                input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device),
                past_key_values=cache, use_cache=True,
            ).logits
            for row, (i, _) in enumerate(batch):
                scores[i] = float(logits[row, 0].float())

    def score(
        self, conversations: Sequence[Conversation], metadata: Sequence[Mapping] | None = None
    ) -> list[float]:
        """One reward per conversation (higher = better); ``metadata`` is not needed and ignored."""
        if not conversations:
            return []
        return self.score_ids(self.encode(conversations))


def _dynamic_layers(cache) -> list:
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        raise _NoSharing(f"unexpected cache {type(cache).__name__}")
    return list(layers)


class _NoSharing(RuntimeError):
    """The model's cache is not a plain full-attention DynamicCache: score without sharing."""


def _last_real(seq: Sequence[int], pad: int | None) -> int:
    """Index a sequence classifier pools for ``seq`` (its rightmost non-pad token; 0 if none)."""
    for j in range(len(seq) - 1, -1, -1):
        if seq[j] != pad:
            return j
    return 0


def _lcp(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    if a[:n] == b[:n]:
        return n
    x, y = np.asarray(a[:n]), np.asarray(b[:n])
    return int(np.flatnonzero(x != y)[0])


def prefix_groups(
    seqs: list[list[int]], pad: int | None, min_shared: int = 16
) -> tuple[list[tuple[int, list[int]]], list[int]]:
    """Partition sequences into prefix-sharing groups and the rest.

    Returns ``(groups, rest)``: each group is ``(n, members)`` -- at least two sequences whose
    first ``n`` token ids are identical (checked, not assumed), with ``n >= min_shared`` and ``n``
    at most each member's pooled (last non-pad) index, so every member keeps at least the token
    it is scored at in its suffix. Sequences are sorted lexicographically; adjacent common
    prefixes form an LCP-interval tree, and for every interval the cheaper of "one group with the
    interval's common prefix" and "the best split of its children" is kept (tokens saved =
    ``(members - 1) * n``), so K samples of one prompt group on their prompt rather than with all
    prompts on a shared system prompt.
    """
    order = sorted(range(len(seqs)), key=lambda i: seqs[i])
    last = [_last_real(seqs[i], pad) for i in order]
    lcp = [_lcp(seqs[order[j]], seqs[order[j + 1]]) for j in range(len(order) - 1)]
    # node: [lo, hi, m, children, min_last, value, take_whole]
    def leaf(j):
        return [j, j, None, [], last[j], 0, False]

    def finalize(node):
        children = node[3]
        node[0], node[1] = children[0][0], children[-1][1]
        node[4] = min(c[4] for c in children)
        cap = min(node[2], node[4])
        whole = (node[1] - node[0]) * cap if cap >= min_shared else 0
        split = sum(c[5] for c in children)
        node[5], node[6] = max(whole, split), whole > 0 and whole >= split
        return node

    if not seqs:
        return [], []
    stack: list[list] = []
    cur = leaf(0)
    for j, h in enumerate(lcp):
        while stack and stack[-1][2] > h:
            top = stack.pop()
            top[3].append(cur)
            cur = finalize(top)
        if stack and stack[-1][2] == h:
            stack[-1][3].append(cur)
        else:
            stack.append([cur[0], cur[1], h, [cur], None, 0, False])
        cur = leaf(j + 1)
    while stack:
        top = stack.pop()
        top[3].append(cur)
        cur = finalize(top)
    groups: list[tuple[int, list[int]]] = []
    rest: list[int] = []
    todo = [cur]
    while todo:
        node = todo.pop()
        if node[6]:
            groups.append((min(node[2], node[4]), [order[j] for j in range(node[0], node[1] + 1)]))
        elif not node[3]:
            rest.append(order[node[0]])
        else:
            todo.extend(node[3])
    return groups, rest
