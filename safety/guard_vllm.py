"""The generative guard on vLLM: the offline engine in its own process, scoring and generating.

herd.core.generation's :class:`VLLMBackend` samples completions; a guard needs something else
first: the log-probabilities of *given* tokens (the ``\\n\\n`` prefix and ``unsafe``) after the
prompt. vLLM returns those as ``prompt_logprobs`` when the tokens are appended to the prompt, so
one scoring request per path is a single prefill, no sampling. The engine process (spawned child
that dies with its parent, reaped on close) and the engine construction are core's
(``herd.core.generation.vllm.EngineProcess``), so both stay configured the same way.
"""

from __future__ import annotations

import math
from typing import Sequence

from herd.core.generation.vllm import EngineProcess, VLLMEngineConfig


def _token_logprob(entry, token_id: int) -> float:
    return float(entry[token_id].logprob)


def _score(llm, items: list[tuple[list[int], list[int], int]]) -> list[float]:
    """P(unsafe first non-whitespace token) = p(u | x) + p(ws | x) * p(u | x, ws)."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    inputs, owners = [], []
    for i, (prompt, ws, u) in enumerate(items):
        inputs.append({"prompt_token_ids": prompt + ws + [u]})
        owners.append((i, "via_ws"))
        if ws:
            inputs.append({"prompt_token_ids": prompt + [u]})
            owners.append((i, "direct"))
    outputs = llm.generate(inputs, [params] * len(inputs), use_tqdm=False)
    probs = [0.0] * len(items)
    for out, (i, path) in zip(outputs, owners):
        prompt, ws, u = items[i]
        lps = out.prompt_logprobs  # entry t: log p(token t | tokens < t); entry 0 is None
        ids = out.prompt_token_ids
        start = len(prompt)
        logp = sum(_token_logprob(lps[t], ids[t]) for t in range(start, len(ids)))
        probs[i] += math.exp(logp)
    return probs


def _generate(llm, prompts: list[list[int]], max_tokens: int, stop_ids: list[int]) -> list[list[int]]:
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, stop_token_ids=stop_ids)
    outputs = llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
    return [list(o.outputs[0].token_ids) for o in outputs]


#: Requests the guard's engine process serves (run by herd.core.generation.vllm.EngineProcess).
HANDLERS = {
    "score": lambda llm, tokenizer, items: _score(llm, items),
    "generate": lambda llm, tokenizer, prompts, max_tokens, stop_ids: _generate(llm, prompts, max_tokens, stop_ids),
}


class VLLMGuardEngine:
    """Scores and generates token-id prompts on a vLLM engine in a child process."""

    def __init__(self, model: str, engine: VLLMEngineConfig | None = None, seed: int = 0):
        cfg = engine or VLLMEngineConfig(enable_prefix_caching=False)
        self._engine = EngineProcess(model, cfg, seed, handlers=__name__)

    def _call(self, kind: str, *args):
        return self._engine.call(kind, *args)

    def score(self, items: Sequence[tuple[list[int], list[int], int]]) -> list[float]:
        return self._call("score", [(list(p), list(w), int(u)) for p, w, u in items])

    def generate(self, prompts: Sequence[list[int]], max_tokens: int, stop_ids: list[int]) -> list[list[int]]:
        return self._call("generate", [list(p) for p in prompts], max_tokens, list(stop_ids))

    def close(self) -> None:
        self._engine.close()
