"""Prefix-shared reward scoring (RewardModelScorer(share_prefixes=True)) on the tiny kit's real
reward model (LlamaForSequenceClassification): same scores as the full-forward path, in the
caller's order, and fewer tokens actually fed to the model."""

from __future__ import annotations

import os
import random

import pytest
import torch

from herd.core.reward_scoring import RewardModelScorer, prefix_groups

WORDS = ("the number of apples is twelve and she buys three more boxes then sells half of them "
         "to her friend who pays five dollars each so how much money").split()


@pytest.fixture(scope="module")
def scorers(tiny_kit):
    unshared = RewardModelScorer(tiny_kit["reward"], batch_size=4, share_prefixes=False)
    assert next(unshared.model.parameters()).dtype == torch.float32
    shared = RewardModelScorer(tiny_kit["reward"], batch_size=4, model=unshared.model, tokenizer=unshared.tokenizer)
    assert shared.share_prefixes and shared.supports_prefix_sharing()
    return shared, unshared


def _conversations(seed: int = 0):
    """Several prompts (same system prompt, different questions) with K samples of different
    response lengths each, one prompt with a single sample (a group of 1), shuffled."""
    rng = random.Random(seed)
    convs, prompt_of = [], []
    for p, k in enumerate((8, 8, 5, 1, 3)):
        prompt = [{"role": "system", "content": "Solve the problem step by step."},
                  {"role": "user", "content": f"Question {p}: " + " ".join(rng.choices(WORDS, k=15 + 6 * p))}]
        for j in range(k):
            n = 1 + (j * 7 + p) % 45  # 1 .. 45 words
            convs.append(prompt + [{"role": "assistant", "content": " ".join(rng.choices(WORDS, k=n))}])
            prompt_of.append(p)
    order = list(range(len(convs)))
    rng.shuffle(order)
    return [convs[i] for i in order], [prompt_of[i] for i in order]


def _common_prefix(seqs: list[list[int]]) -> int:
    return len(os.path.commonprefix([list(s) for s in seqs]))


class TokenCounter:
    """Counts the real (attention-masked-in) tokens of every forward's input_ids."""

    def __init__(self, model):
        self.tokens = 0
        self.forwards_with_cache = 0
        self.handle = model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        self.tokens += int(mask[:, -ids.shape[1]:].sum()) if mask is not None else ids.numel()
        self.forwards_with_cache += kwargs.get("past_key_values") is not None

    def close(self):
        self.handle.remove()


@pytest.mark.parametrize("batch_size", [1, 3, 4, 7, 64])
def test_shared_scores_equal_full_forward_in_input_order(scorers, batch_size):
    shared, unshared = scorers
    convs, _ = _conversations()
    shared.batch_size = unshared.batch_size = batch_size
    try:
        got = shared.score(convs)
        want = unshared.score(convs)
    finally:
        shared.batch_size = unshared.batch_size = 4
    assert len(got) == len(convs)
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4
    # order: every score belongs to the conversation at its index (scored alone, no batching)
    alone = [unshared.score([c])[0] for c in convs[:6]]
    assert got[:6] == pytest.approx(alone, abs=1e-4)
    assert len(set(round(x, 6) for x in got)) > len(got) // 2  # scores differ, so order is meaningful


def test_whole_shorter_sequence_as_prefix_and_trailing_pad_ids(scorers):
    """Raw ids: a sequence that is entirely the prefix of longer ones, one that ends in pad ids
    (the classifier pools its last non-pad token in both paths), and an exact duplicate."""
    shared, unshared = scorers
    convs, _ = _conversations(seed=1)
    base = shared.encode(convs[:1])[0]
    pad = shared.tokenizer.pad_token_id
    extra = shared.encode(convs[1:2])[0][-12:]
    seqs = [base, base + extra, base + extra[:3], base[:-5], base + [pad, pad], list(base), base + extra + extra]
    seqs += shared.encode(convs[2:6])
    got = shared.score_ids(seqs)
    want = unshared.score_ids(seqs)
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4
    assert got[0] == pytest.approx(got[5], abs=1e-5)  # duplicate
    assert got[4] == pytest.approx(got[0], abs=1e-4)  # trailing pads are not scored
    groups, _ = prefix_groups(seqs, pad, shared.min_shared_tokens)
    grouped = {i for _, m in groups for i in m}
    assert {0, 1, 2, 3, 4, 5, 6} <= grouped


def test_left_truncated_sequences_stay_exact(tiny_kit, scorers):
    shared, unshared = scorers
    convs, _ = _conversations(seed=2)
    a = RewardModelScorer(tiny_kit["reward"], max_length=40, model=shared.model, tokenizer=shared.tokenizer)
    b = RewardModelScorer(tiny_kit["reward"], max_length=40, model=shared.model, tokenizer=shared.tokenizer,
                          share_prefixes=False)
    enc = a.encode(convs)
    assert max(len(e) for e in enc) == 40
    assert max(abs(x - y) for x, y in zip(a.score_ids(enc), b.score_ids(enc))) < 1e-4


def test_prefix_sharing_feeds_fewer_tokens_by_the_shared_prompts(scorers):
    """Counts tokens entering the model: the shared path feeds each prompt group's common prefix
    once, i.e. exactly (K - 1) * common_prefix fewer tokens per prompt than the full path."""
    shared, unshared = scorers
    convs, prompt_of = _conversations()
    enc = shared.encode(convs)
    total = sum(len(e) for e in enc)
    saved = 0
    for p in set(prompt_of):
        members = [enc[i] for i in range(len(enc)) if prompt_of[i] == p]
        if len(members) > 1:
            saved += (len(members) - 1) * _common_prefix(members)
    assert saved > 0.4 * total  # the prompts dominate these conversations

    counts = {}
    for label, scorer in (("shared", shared), ("unshared", unshared)):
        counter = TokenCounter(scorer.model)
        try:
            scorer.score_ids(enc)
        finally:
            counter.close()
        counts[label] = counter
    assert counts["unshared"].tokens == total
    assert counts["unshared"].forwards_with_cache == 0
    assert counts["shared"].forwards_with_cache > 0
    assert counts["shared"].tokens == total - saved


def test_prefix_groups_are_exact_and_per_prompt(scorers):
    shared, _ = scorers
    convs, prompt_of = _conversations()
    enc = shared.encode(convs)
    pad = shared.tokenizer.pad_token_id
    groups, rest = prefix_groups(enc, pad, 16)
    members = sorted(i for _, m in groups for i in m)
    assert sorted(members + list(rest)) == list(range(len(enc)))  # a partition
    for n, m in groups:
        assert len(m) >= 2 and n >= 16
        assert all(enc[i][:n] == enc[m[0]][:n] for i in m)  # really shared
        assert all(n < len(enc[i]) for i in m)  # every member keeps a suffix
        assert len({prompt_of[i] for i in m}) == 1  # grouped on the prompt, not the system prompt
    assert {prompt_of[i] for i in rest} == {3}  # the single-sample prompt
    assert prefix_groups([], pad) == ([], [])
    assert prefix_groups([[1, 2, 3]], pad) == ([], [0])


def test_switch_off_and_unsupported_models_take_the_full_path(tiny_kit, scorers):
    shared, unshared = scorers
    convs, _ = _conversations()
    counter = TokenCounter(unshared.model)
    try:
        unshared.score(convs)
    finally:
        counter.close()
    assert counter.forwards_with_cache == 0

    from transformers import BertConfig, BertForSequenceClassification

    cfg = BertConfig(vocab_size=len(shared.tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, num_labels=1, pad_token_id=shared.tokenizer.pad_token_id,
                     max_position_embeddings=512)
    bert = BertForSequenceClassification(cfg).eval()
    enc_scorer = RewardModelScorer(tiny_kit["reward"], model=bert, tokenizer=shared.tokenizer)
    assert not enc_scorer.supports_prefix_sharing()
    scores = enc_scorer.score(convs[:6])
    off = RewardModelScorer(tiny_kit["reward"], model=bert, tokenizer=shared.tokenizer, share_prefixes=False)
    assert scores == pytest.approx(off.score(convs[:6]), abs=1e-5)
