"""Generation throughput for rejection sampling (issue #5), all figures from one run.

Same prompts (real GSM8K questions, with a system prompt) and same K for every row:

1. engines: generated tokens/s of HF ``generate`` (the anchor) vs the vLLM engine with
   ``n=K`` requests, with K seeded ``n=1`` requests per prompt (herd's default, prefix cache on),
   and with those repeated prompts and the prefix cache off (no prompt sharing at all);
2. stage: the whole ``herd sample`` stage (generation + reward scoring + selection + writing +
   merge) vs the raw engine on the same work, same engine (target: >= 0.8x);
3. rm_sorting: reward-model scoring of the stage's samples with length-sorted batches vs
   unsorted (target: >= 1.5x), and prefix-shared scoring (each prompt's KV computed once for its
   K samples, ``RewardModelScorer(share_prefixes=True)``, the default) vs the sorted unshared path.

Outputs have varying lengths from stop tokens, never a forced length. A randomly initialised
tiny model almost never emits <|eot_id|>, so on the built tiny models the stop set also holds
``--stop-reserved`` reserved special tokens (about that many in ~2300 tokens per step end a
sample). With ``--model`` (a real checkpoint, e.g. on a GPU box) the Llama 3 stops alone are used.

CPU (this machine):  python bench/generation_throughput.py --out docs/benchmarks/generation_cpu_run1.json
GPU (Llama 3.2 1B, anchor = HF generate, 32 prompts x K=8 x 256 tokens, 2,649 tok/s on an H200):
  python bench/generation_throughput.py --model PATH/Llama-3.2-1B-Instruct \\
      --reward-model PATH/reward --prompts 32 --k 8 --max-new-tokens 256 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
GSM8K = REPO / "data" / "gsm8k" / "test.jsonl"
SYSTEM = "Solve the problem step by step and end with the final answer as a number."


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="policy checkpoint (default: build the tiny model)")
    p.add_argument("--reward-model", help="reward model checkpoint (default: the tiny reward model)")
    p.add_argument("--shape", default="micro", choices=["micro", "small"], help="tiny model shape")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--stop-reserved", type=int, default=36, help="reserved specials in the stop set (tiny only)")
    p.add_argument("--shard-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per row; the best is kept")
    p.add_argument("--rm-batch-size", type=int, default=16)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--kv-cache-gib", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads for HF generate and reward scoring (CPU only). vLLM's CPU build "
                        "binds its model to one core on a 2-core machine (one reserved), so 1 compares like "
                        "with like; on a machine shared with other jobs 2 threads also oversubscribe badly")
    p.add_argument("--skip", nargs="*", default=[], help="sections to skip: hf, vllm_n, nocache, stage, rm")
    p.add_argument("--out", type=Path, help="write the results JSON here")
    return p.parse_args()


def setup_models(args, work: Path) -> tuple[str, str, tuple[str, ...]]:
    from herd.core.generation import LLAMA3_STOP_TOKENS
    from herd.core.tiny import build_tiny, llama3_special_tokens

    if args.model:
        if not args.reward_model:
            raise SystemExit("--model needs --reward-model")
        return args.model, args.reward_model, LLAMA3_STOP_TOKENS
    paths = build_tiny(work / "tiny", shape=args.shape, seed=0)
    reserved = [t for t in llama3_special_tokens() if "reserved" in t][: args.stop_reserved]
    return str(paths["policy"]), str(paths["reward"]), tuple(LLAMA3_STOP_TOKENS) + tuple(reserved)


def prompt_file(n: int, work: Path) -> Path:
    from herd.core.verifiers import load_gsm8k

    rows = [{"id": r["id"], "messages": r["messages"], "system_prompt": SYSTEM, "reference": r["reference"]}
            for r in load_gsm8k(GSM8K, limit=n)]
    path = work / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def timed_generate(backend, texts, keys, spec, repeats: int = 1) -> dict:
    """Best of ``repeats`` (the machine is shared: the best run is the least disturbed one)."""
    backend.generate(texts[:2], spec, prompt_keys=[f"warm-{k}" for k in keys[:2]])  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = backend.generate(texts, spec, prompt_keys=keys)
        times.append(time.perf_counter() - t)
    dt = min(times)
    lengths = [len(s.token_ids) for per in out for s in per]
    return {
        "s": round(dt, 3),
        "generated_tokens": sum(lengths),
        "tok_per_s": round(sum(lengths) / dt, 1),
        "sequences": len(lengths),
        "mean_len": round(statistics.mean(lengths), 1),
        "min_len": min(lengths),
        "max_len": max(lengths),
        "truncated_frac": round(sum(s.truncated for per in out for s in per) / len(lengths), 3),
        "all_s": [round(x, 3) for x in times],
    }


def stage_vs_raw(args, cfg_kwargs, engine, texts, keys, spec, work: Path) -> dict:
    """The whole stage vs the raw engine on the same engine and prompts, alternated ``repeats``
    times (best of each kept). Engine start-up and reward-model loading are outside all timings;
    everything else the stage does (prompt checks, model hash, scoring, selection, shard writes,
    merge, manifest) is inside. The raw engine gets all prompts in one call; the stage works in
    shards of ``--shard-size`` prompts. Two stage variants: ranked by the reward model (the
    usual case), and by the GSM8K verifier alone (no model forward: herd's own plumbing)."""
    from herd.core.reward_scoring import RewardModelScorer
    from herd.core.verifiers import NumberMatchVerifier
    from herd.rejection_sampling import SampleConfig, run_sampling

    variants = {
        "reward_model": {"reward": RewardModelScorer(args._rm, batch_size=args.rm_batch_size, name="reward")},
        # the pre-prefix-sharing scorer, same run: the in-process anchor for the change
        "reward_model_unshared": {"reward": RewardModelScorer(args._rm, batch_size=args.rm_batch_size,
                                                              name="reward", share_prefixes=False)},
        "verifier_only": {"verifier": NumberMatchVerifier()},
    }
    times: dict[str, list[float]] = {"raw_engine": [], **{v: [] for v in variants}}
    metrics: dict[str, dict] = {}
    for r in range(args.repeats):
        t = time.perf_counter()
        raw = engine.generate(texts, spec, prompt_keys=keys)
        times["raw_engine"].append(time.perf_counter() - t)
        for name, scorers in variants.items():
            cfg = SampleConfig(output_dir=work / f"stage-{name}-{r}", **cfg_kwargs)
            t = time.perf_counter()
            out = run_sampling(cfg, scorers, backend=engine)
            times[name].append(time.perf_counter() - t)
            metrics[name] = json.loads((out / "metrics.json").read_text())
            metrics[name]["samples_file"] = str(out / "samples.jsonl")
    tokens = sum(len(s.token_ids) for per in raw for s in per)
    result = {"generated_tokens": tokens, "shards": metrics["reward_model"]["shards"],
              "raw_engine_s": [round(x, 3) for x in times["raw_engine"]],
              "raw_engine_tok_per_s": round(tokens / min(times["raw_engine"]), 1)}
    for name in variants:
        m = metrics[name]
        result[f"stage_{name}"] = {
            "s": [round(x, 3) for x in times[name]],
            "tok_per_s": round(tokens / min(times[name]), 1),
            "ratio_vs_raw_engine": round(min(times["raw_engine"]) / min(times[name]), 3),
            "same_tokens_as_raw": m["generated_tokens"] == tokens,
            "last_run_summed_s": {k: round(v, 3) for k, v in m["timings"].items()},
            "sft_rows": m["sft_kept"], "pairs": m["pairs"],
        }
    result["samples_file"] = metrics["reward_model"]["samples_file"]
    return result


def rm_sorting(args, samples_file: Path, prompts_path: Path) -> dict:
    """Score the stage's samples with length-sorted batches vs in arrival order (both without
    prefix sharing), and with prefix sharing (sorted) vs the sorted unshared path. The three
    variants are timed interleaved (best of ``--repeats`` rounds, at least 3), so a load spike on
    the shared machine hits all of them alike."""
    from herd.core.reward_scoring import RewardModelScorer, prefix_groups
    from herd.rejection_sampling import PromptSetConfig, load_prompts

    prompts = {p.id: p for p in load_prompts([PromptSetConfig(path=prompts_path)])}
    rows = [json.loads(line) for line in samples_file.read_text().splitlines()]
    convs = [[*prompts[r["prompt_id"]].messages, {"role": "assistant", "content": r["text"]}] for r in rows]
    variants = {"unsorted": dict(sort_by_length=False, share_prefixes=False),
                "sorted": dict(sort_by_length=True, share_prefixes=False),
                "sorted_prefix_shared": dict(sort_by_length=True, share_prefixes=True)}
    base = RewardModelScorer(args._rm, batch_size=args.rm_batch_size, name="reward")
    scorers = {label: RewardModelScorer(args._rm, batch_size=args.rm_batch_size, name="reward", model=base.model,
                                        tokenizer=base.tokenizer, **kw) for label, kw in variants.items()}
    encoded = base.encode(convs)
    tokens = sum(len(e) for e in encoded)
    groups, rest = prefix_groups(encoded, base._pad_id(), base.min_shared_tokens)
    saved = sum((len(members) - 1) * n for n, members in groups)
    out = {}
    for label, rm in scorers.items():
        rm.score_ids(encoded[: 4 * args.rm_batch_size])  # warm-up
        out[label] = rm.score_ids(encoded)
    times: dict[str, list[float]] = {label: [] for label in scorers}
    for _ in range(max(3, args.repeats)):
        for label, rm in scorers.items():
            times[label].append(_time(lambda: rm.score_ids(encoded)))
    result: dict = {"tokens": tokens, "conversations": len(encoded)}
    for label in scorers:
        best = min(times[label])
        fed = tokens - saved if variants[label]["share_prefixes"] else tokens
        result[label] = {"s": round(best, 3), "all_s": [round(x, 3) for x in times[label]],
                         "sequences_per_s": round(len(encoded) / best, 1), "tokens_fed": fed,
                         "tokens_per_s": round(tokens / best, 1)}
    result["prefix_groups"] = {"groups": len(groups), "ungrouped": len(rest),
                               "mean_members": round(statistics.mean(len(m) for _, m in groups), 2) if groups else 0,
                               "mean_prefix_tokens": round(statistics.mean(n for n, _ in groups), 1) if groups else 0,
                               "tokens_saved": saved}
    result["max_abs_diff_shared_vs_unshared"] = max(abs(a - b) for a, b in zip(out["sorted_prefix_shared"], out["sorted"]))
    result["speedup_sorted"] = round(result["unsorted"]["s"] / result["sorted"]["s"], 3)
    result["speedup_prefix_shared_vs_sorted"] = round(result["sorted"]["s"] / result["sorted_prefix_shared"]["s"], 3)
    return result


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def vllm_rows(args, model, texts, keys, spec, stage_kwargs, work) -> dict:
    from herd.core.generation.vllm import VLLMBackend, VLLMEngineConfig
    from herd.rejection_sampling.stage import vllm_engine_config

    rows: dict = {}
    variants = [
        ("vllm_n_k_prefix_cache", "n", True, "vllm_n"),
        ("vllm_per_sample_prefix_cache", "per_sample", True, None),
        ("vllm_repeated_no_prefix_cache", "per_sample", False, "nocache"),
    ]
    for label, mode, cache, skip_key in variants:
        if skip_key in args.skip:
            continue
        cfg = VLLMEngineConfig(dtype=args.dtype, kv_cache_gib=args.kv_cache_gib, enable_prefix_caching=cache, request_mode=mode)
        # Same engine settings the stage uses (on CPU: no chunked prefill, see stage.vllm_engine_config).
        cfg = vllm_engine_config(cfg)
        t = time.perf_counter()
        try:
            engine = VLLMBackend(model, engine=cfg, seed=spec.seed)
        except Exception as e:  # record, keep going: the other rows still compare
            rows[label] = {"error": str(e)[-800:]}
            continue
        startup = time.perf_counter() - t
        try:
            rows[label] = {**timed_generate(engine, texts, keys, spec, args.repeats), "engine_startup_s": round(startup, 1)}
            if label == "vllm_per_sample_prefix_cache" and "stage" not in args.skip:
                rows["stage"] = stage_vs_raw(args, stage_kwargs, engine, texts, keys, spec, work)
        except Exception as e:
            rows[label] = {"error": str(e)[-800:]}
        finally:
            engine.close()
    return rows


def main() -> None:
    args = parse_args()
    import torch

    from herd.core.generation import SamplingSpec
    from herd.core.generation.hf import HFBackend
    from herd.core.models import ModelSpec, load_tokenizer
    from herd.rejection_sampling import PromptSetConfig, SamplerConfig, load_prompts
    from herd.rejection_sampling.prompts import render_prompts

    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="herd_genbench_"))
    model, args._rm, stops = setup_models(args, work)
    prompts_path = prompt_file(args.prompts, work)
    prompts = load_prompts([PromptSetConfig(path=prompts_path)])
    render_prompts(prompts, load_tokenizer(model), 10**9, args.max_new_tokens)
    texts, keys = [p.text for p in prompts], [p.id for p in prompts]
    sampler = SamplerConfig(k=args.k, max_new_tokens=args.max_new_tokens, temperature=1.0, seed=0, stop_tokens=list(stops))
    spec = sampler.spec()
    results: dict = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "setup": {"model": model if args.model else f"tiny {args.shape} (built, random init)",
                  "prompts": len(prompts), "k": args.k, "max_new_tokens": args.max_new_tokens,
                  "stop_tokens": len(stops), "mean_prompt_tokens": round(statistics.mean(p.n_tokens for p in prompts), 1),
                  "shard_size": args.shard_size, "rm_batch_size": args.rm_batch_size, "dtype": args.dtype,
                  "torch_threads": torch.get_num_threads()},
    }
    if "hf" not in args.skip:
        hf = HFBackend(ModelSpec(model, dtype=args.dtype), batch_size=len(prompts))
        results["hf_generate"] = timed_generate(hf, texts, keys, spec, max(1, args.repeats - 1))
        hf.close()
        print(json.dumps(results["hf_generate"]), flush=True)
    stage_kwargs = dict(
        model=model, prompt_sets=[PromptSetConfig(path=prompts_path)], sampling=sampler, backend="vllm",
        shard_size=args.shard_size,
    )
    results.update(vllm_rows(args, model, texts, keys, spec, stage_kwargs, work))
    anchor = results.get("hf_generate", {}).get("tok_per_s")
    for label, row in results.items():
        if anchor and isinstance(row, dict) and "tok_per_s" in row and label != "stage":
            row["ratio_vs_hf_generate"] = round(row["tok_per_s"] / anchor, 3)
    cached = results.get("vllm_per_sample_prefix_cache", {}).get("tok_per_s")
    uncached = results.get("vllm_repeated_no_prefix_cache", {}).get("tok_per_s")
    if cached and uncached:
        results["prompt_sharing_speedup"] = round(cached / uncached, 3)
    if "stage" in results and "rm" not in args.skip:
        results["rm_sorting"] = rm_sorting(args, Path(results["stage"].pop("samples_file")), prompts_path)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
