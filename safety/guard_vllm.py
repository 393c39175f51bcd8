"""The generative guard on vLLM: the offline engine in its own process, scoring and generating.

herd.core.generation's :class:`VLLMBackend` samples completions; a guard needs something else
first: the log-probabilities of *given* tokens (the ``\\n\\n`` prefix and ``unsafe``) after the
prompt. vLLM returns those as ``prompt_logprobs`` when the tokens are appended to the prompt, so
one scoring request per path is a single prefill, no sampling. The process layout (spawned child,
own process group, reaped on close) and the engine construction are core's, reused from
``herd.core.generation.vllm`` so both stay configured the same way.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import traceback
from typing import Sequence

from herd.core.generation.vllm import VLLMEngineConfig, VLLMError, shutdown_engine, start_engine


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


def _worker(conn, model: str, cfg: VLLMEngineConfig, seed: int) -> None:
    os.setpgrp()  # own group: close() reaps vLLM's engine-core processes with one killpg
    try:
        llm = start_engine(model, cfg, seed)
        conn.send(("ready", None))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    handlers = {"score": _score, "generate": _generate}
    while True:
        request = conn.recv()
        if request is None:
            break
        kind, args = request
        try:
            conn.send(("ok", handlers[kind](llm, *args)))
        except BaseException:
            conn.send(("error", traceback.format_exc()))
    shutdown_engine(llm)
    conn.send(("closed", None))
    conn.close()
    os._exit(0)


class VLLMGuardEngine:
    """Scores and generates token-id prompts on a vLLM engine in a child process."""

    def __init__(self, model: str, engine: VLLMEngineConfig | None = None, seed: int = 0):
        cfg = engine or VLLMEngineConfig(enable_prefix_caching=False)
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker, args=(child, str(model), cfg, seed), daemon=False)
        self._proc.start()
        child.close()
        status, payload = self._recv()
        if status != "ready":
            self.close()
            raise VLLMError(f"vLLM engine failed to start for {model}:\n{payload}")

    def _recv(self):
        try:
            return self._conn.recv()
        except EOFError as e:
            raise VLLMError(f"vLLM subprocess died (exit code {self._proc.exitcode})") from e

    def _call(self, kind: str, *args):
        if self._proc is None:
            raise VLLMError("guard engine is closed")
        self._conn.send((kind, args))
        status, payload = self._recv()
        if status != "ok":
            raise VLLMError(f"vLLM {kind} failed:\n{payload}")
        return payload

    def score(self, items: Sequence[tuple[list[int], list[int], int]]) -> list[float]:
        return self._call("score", [(list(p), list(w), int(u)) for p, w, u in items])

    def generate(self, prompts: Sequence[list[int]], max_tokens: int, stop_ids: list[int]) -> list[list[int]]:
        return self._call("generate", [list(p) for p in prompts], max_tokens, list(stop_ids))

    def close(self) -> None:
        if getattr(self, "_proc", None) is None:
            return
        try:
            if self._proc.is_alive():
                self._conn.send(None)
                if self._conn.poll(120):
                    self._conn.recv()
        except (BrokenPipeError, OSError, EOFError):
            pass
        self._proc.join(timeout=30)
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._proc.join()
        self._proc = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
