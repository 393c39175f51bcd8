"""Generation backends: vLLM (CPU build, subprocess engine) and HF generate agree.

One vLLM engine is shared by the module (start-up is ~25 s on this CPU).
"""

from __future__ import annotations

import os

import pytest
import torch

from herd.core.chat import render
from herd.core.generation import SamplingSpec
from herd.core.generation.hf import HFBackend
from tests.conftest import requires_vllm

PROMPTS = [
    render([{"role": "user", "content": c}], add_generation_prompt=True)
    for c in ["Hello there", "What is 2+2?", "Tell me a story about a cat", "How do I kill a Python process?"]
]
GREEDY = SamplingSpec(n=1, temperature=0.0, max_new_tokens=24)


@pytest.fixture(scope="module")
def hf(tiny_kit):
    return HFBackend(str(tiny_kit["policy"]), batch_size=2)


@pytest.fixture(scope="module")
def vllm(tiny_kit):
    from herd.core.generation.vllm import VLLMBackend

    backend = VLLMBackend(str(tiny_kit["policy"]), kv_cache_gib=1)
    yield backend
    backend.close()


def _forward_logprobs(model, tok, prompt: str, ids: list[int]) -> torch.Tensor:
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    x = torch.tensor([p + ids])
    with torch.no_grad():
        logits = model(x).logits[0, len(p) - 1 : -1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids)[:, None])[:, 0]


def test_hf_logprobs_match_forward_pass(hf):
    out = hf.generate(PROMPTS[:2], SamplingSpec(n=2, temperature=1.0, max_new_tokens=12, seed=5))
    for prompt, samples in zip(PROMPTS, out):
        assert len(samples) == 2
        for s in samples:
            ref = _forward_logprobs(hf.model, hf.tokenizer, prompt, s.token_ids)
            torch.testing.assert_close(torch.tensor(s.logprobs), ref, atol=1e-4, rtol=0)


def test_hf_sampling_is_seeded(hf):
    spec = SamplingSpec(n=3, temperature=1.0, max_new_tokens=10, seed=11)
    a = hf.generate(PROMPTS, spec)
    b = hf.generate(PROMPTS, spec)
    assert [[s.token_ids for s in x] for x in a] == [[s.token_ids for s in x] for x in b]
    assert len({tuple(s.token_ids) for s in a[0]}) > 1  # K distinct samples, not K copies


@requires_vllm
@pytest.mark.vllm
def test_vllm_greedy_equals_hf_greedy(vllm, hf):
    v = vllm.generate(PROMPTS, GREEDY)
    h = hf.generate(PROMPTS, GREEDY)
    for vs, hs in zip(v, h):
        assert vs[0].token_ids == hs[0].token_ids
        assert vs[0].finish_reason == hs[0].finish_reason
        assert vs[0].text == hs[0].text
        torch.testing.assert_close(torch.tensor(vs[0].logprobs), torch.tensor(hs[0].logprobs), atol=1e-4, rtol=0)


@requires_vllm
@pytest.mark.vllm
def test_vllm_samples_seeded_per_sample_and_batch_independent(vllm, hf):
    spec = SamplingSpec(n=4, temperature=1.0, max_new_tokens=12, seed=7)
    full = vllm.generate(PROMPTS, spec, prompt_keys=["a", "b", "c", "d"])
    assert all(len(s) == 4 for s in full)
    assert len({tuple(s.token_ids) for s in full[0]}) > 1
    # The same prompt key in a different batch gives the same samples (resume relies on this).
    alone = vllm.generate([PROMPTS[2]], spec, prompt_keys=["c"])
    assert [s.token_ids for s in alone[0]] == [s.token_ids for s in full[2]]
    # Recorded log-probs are the model's raw distribution: they match an HF forward pass.
    for s in full[1]:
        ref = _forward_logprobs(hf.model, hf.tokenizer, PROMPTS[1], s.token_ids)
        torch.testing.assert_close(torch.tensor(s.logprobs), ref, atol=1e-4, rtol=0)
        assert s.finish_reason in ("stop", "length")
        assert (s.finish_reason == "length") == (len(s.token_ids) == 12 and s.token_ids[-1] not in (hf.tokenizer.convert_tokens_to_ids(["<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"])))


@requires_vllm
@pytest.mark.vllm
def test_vllm_close_ends_engine_processes(tiny_kit):
    """The engine subprocess and vLLM's engine-core processes are gone after close(), so their
    memory is free before training starts."""
    import psutil

    from herd.core.generation.vllm import VLLMBackend

    backend = VLLMBackend(str(tiny_kit["policy"]), kv_cache_gib=1)
    procs = [psutil.Process(backend._engine.pid)] + backend.engine_processes()
    assert len(procs) >= 2  # the worker and at least one engine-core process
    backend.generate(PROMPTS[:1], GREEDY)
    backend.close()
    alive = [p.pid for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
