"""DPO throughput: herd's DPO stage vs TRL 1.16 DPOTrainer defaults, same data, same machine.

    python bench/dpo_throughput.py            # CPU: tiny "small" Llama (4 layers, d=256)
    python bench/dpo_throughput.py --gpu      # one GPU: Llama-3.2-1B shape, random bf16 weights

Each configuration runs in its own child process (one after another, same data) so that peak
memory is measured cleanly: on GPU ``torch.cuda.max_memory_allocated`` over training, on CPU the
growth of peak RSS over the RSS before the models are loaded. Throughput counts non-padding
tokens of chosen + rejected sequences per second of optimizer steps (median of the steps after
warm-up), as TRL's own ``num_tokens`` does; on CPU the children use one thread and
throughput is also given per CPU-second of the process, which stays meaningful when other jobs
share the machine (wall-clock figures there depend on the neighbours); a reference pass that herd skips by reusing the
sampler's log-probs is thus counted as saved work, as the issue asks.

Data: prompts are the first user turns of HH-RLHF harmless; completions are 1–3 HH-vocabulary
sentences of varied length ending in <|eot_id|>, and their "sampler" log-probs are computed once
with the starting model (what vLLM records when that model samples; their agreement with a
forward pass is tested in tests/preference/test_sampler_logprobs.py). TRL gets the same pairs
as conversational text.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIGS = ["trl_default", "trl_precompute", "herd", "herd_no_reuse", "herd_gc_off"]


def _settings(gpu: bool) -> dict:
    if gpu:  # anchor: 8 pairs/step, ~514-token sequences (../shared/bench/trl_gpu_anchor.py)
        return {"pairs": 8 * 16, "batch": 8, "steps": 14, "warm": 4, "prompt_tokens": 256, "completion_tokens": (128, 384)}
    return {"pairs": 8 * 10, "batch": 8, "steps": 8, "warm": 2, "prompt_tokens": 96, "completion_tokens": (16, 112)}


# ----------------------------------------------------------------------------- setup (parent)


def build_model(work: Path, gpu: bool) -> Path:
    from herd.core.tiny import SHAPES, TinyShape, build_models, build_tokenizer

    tok = build_tokenizer(work / "tokenizer")
    if not gpu:
        return build_models(work, tokenizer=tok, shape=SHAPES["small"], seed=0, reward_model=False)["policy"]
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    from herd.core.tiny import llama_config

    shape = TinyShape(hidden_size=2048, num_layers=16, num_heads=32, num_kv_heads=8, intermediate_size=8192,
                      max_position_embeddings=8192)
    cfg = llama_config(tok, shape)
    cfg.vocab_size, cfg.tie_word_embeddings = 128256, True  # Llama 3.2 1B: 1.24B parameters
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.generation_config = GenerationConfig(eos_token_id=cfg.eos_token_id, pad_token_id=cfg.pad_token_id)
    out = work / "policy"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def make_pairs(work: Path, policy: Path, s: dict, gpu: bool) -> Path:
    """Pairs with sampler records (ids + log-probs under the starting model)."""
    import torch

    from herd.core.chat import render_with
    from herd.core.models import ModelSpec, load_causal_lm, load_tokenizer
    from herd.preference.data import load_pairs

    tok = load_tokenizer(str(policy))
    hh, _ = load_pairs(REPO / "data/hh-rlhf-harmless/test.jsonl.gz", "skip", True, s["pairs"] * 2, "hh-rlhf")
    vocab = " ".join(p.chosen[0]["content"] for p in hh).split()
    rng = random.Random(0)
    model = load_causal_lm(ModelSpec(str(policy), dtype="bfloat16" if gpu else "float32"))

    def sentence(n_tokens: int) -> list[int]:
        words = " ".join(rng.choice(vocab) for _ in range(n_tokens))
        return tok(words, add_special_tokens=False)["input_ids"][:n_tokens]

    rows = []
    for i in range(s["pairs"]):
        user = tok.decode(sentence(s["prompt_tokens"] - 8))
        prompt = [{"role": "user", "content": user}]
        p_ids = tok(render_with(tok, prompt, add_generation_prompt=True), add_special_tokens=False)["input_ids"]
        row = {"prompt": prompt, "sampler_model": str(policy)}
        for side in ("chosen", "rejected"):
            while True:
                body = sentence(rng.randint(*s["completion_tokens"]))
                text = tok.decode(body).strip()
                ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|eot_id|>")]
                if text and tok.decode(ids, skip_special_tokens=True).strip() == text:
                    break
            with torch.no_grad():
                full = torch.tensor([p_ids + ids], device=model.device)
                lp = torch.log_softmax(model(full).logits[0, :-1].float(), -1)
                lp = lp.gather(-1, full[0, 1:, None]).squeeze(-1)[len(p_ids) - 1 :]
            row[side] = [{"role": "assistant", "content": text}]
            row[f"{side}_token_ids"], row[f"{side}_logprobs"] = ids, lp.tolist()
        rows.append(row)
    path = work / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ----------------------------------------------------------------------------- one run (child)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _trl_trainer(name: str, policy: Path, pairs: Path, s: dict, gpu: bool, out: str):
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from herd.core.models import load_tokenizer

    rows = [json.loads(x) for x in pairs.read_text().splitlines()]
    ds = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    args = DPOConfig(  # TRL's defaults except what every run must share (batch, steps, dtype, no saving)
        output_dir=out, per_device_train_batch_size=s["batch"], max_steps=s["steps"], save_strategy="no",
        report_to="none", logging_steps=1000, bf16=gpu, use_cpu=not gpu, disable_tqdm=True,
        model_init_kwargs={"dtype": torch.bfloat16 if gpu else torch.float32},
        precompute_ref_log_probs=name == "trl_precompute",
    )
    return DPOTrainer(model=str(policy), args=args, train_dataset=ds, processing_class=load_tokenizer(str(policy)))


def _herd_trainer(name: str, policy: Path, pairs: Path, s: dict, gpu: bool, out: str):
    from herd.preference.data import PreferenceDataConfig
    from herd.preference.dpo import DPOStageConfig, build_trainer

    cfg = DPOStageConfig(
        model=str(policy), output_dir=out, data=PreferenceDataConfig(str(pairs)), batch_size=s["batch"],
        max_steps=s["steps"], save_steps=10**6, logging_steps=1000,
        reuse_sampler_logprobs=name != "herd_no_reuse", gradient_checkpointing=name != "herd_gc_off",
        dtype="bfloat16" if gpu else "float32",
    )
    trainer, report = build_trainer(cfg)
    assert report.reused_ref_logps == (name != "herd_no_reuse"), report.reuse_note
    return trainer


def run_one(name: str, policy: Path, pairs: Path, gpu: bool, out: str) -> dict:
    import torch
    from transformers import TrainerCallback

    s = _settings(gpu)
    if not gpu:
        # One thread: CPU seconds then measure the work itself, whatever else shares the machine.
        torch.set_num_threads(1)
    if gpu:  # datasets 5.2 on the GPU box's Python 3.12 cannot hash TRL's map functions (see ../shared/bench)
        import secrets

        import datasets.fingerprint

        datasets.fingerprint.Hasher.hash = classmethod(lambda cls, value: secrets.token_hex(8))
    base_rss = _rss_bytes()
    trainer = (_trl_trainer if name.startswith("trl") else _herd_trainer)(name, policy, pairs, s, gpu, out)
    tokens: list[int] = []
    collate = trainer.data_collator

    def counting(examples):
        batch = collate(examples)
        tokens.append(int(batch["attention_mask"].sum()))
        return batch

    trainer.data_collator = counting
    stamps: list[float] = []
    cpu_stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if gpu:
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())
            cpu_stamps.append(time.process_time())

        def on_step_end(self, args, state, control, **kw):
            if gpu:
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())
            cpu_stamps.append(time.process_time())

    trainer.add_callback(Clock())
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    w = s["warm"]
    step_s = [stamps[2 * i + 1] - stamps[2 * i] for i in range(len(stamps) // 2)][w:]
    step_cpu = [cpu_stamps[2 * i + 1] - cpu_stamps[2 * i] for i in range(len(cpu_stamps) // 2)][w:]
    step_tokens = tokens[w : w + len(step_s)]
    peak = torch.cuda.max_memory_allocated() if gpu else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rss
    return {
        "tokens_per_s": sum(step_tokens) / sum(step_s),
        "tokens_per_cpu_s": sum(step_tokens) / sum(step_cpu),
        "step_s_median": sorted(step_s)[len(step_s) // 2],
        "tokens_per_step": sum(step_tokens) / len(step_tokens),
        "peak_mem_gb": peak / 2**30,
        "steps_timed": len(step_s),
    }


# ----------------------------------------------------------------------------- driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="Llama-3.2-1B shape on CUDA")
    ap.add_argument("--work", default="/tmp/herd_bench_dpo")
    ap.add_argument("--out", default=None, help="results JSON (default: <work>/results.json)")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = Path(args.work)
    if args.child:
        res = run_one(args.child, work / "policy", work / "pairs.jsonl", args.gpu, str(work / f"run_{args.child}"))
        print("RESULT " + json.dumps(res), flush=True)
        return
    work.mkdir(parents=True, exist_ok=True)
    s = _settings(args.gpu)
    policy = build_model(work, args.gpu)
    make_pairs(work, policy, s, args.gpu)
    results = {"settings": s, "device": _device(args.gpu)}
    for name in args.configs.split(","):
        cmd = [sys.executable, __file__, "--work", str(work), "--child", name] + (["--gpu"] if args.gpu else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        results[name] = json.loads(line[-1][7:]) if line else {"error": proc.stderr[-2000:]}
        print(name, json.dumps(results[name]), flush=True)
    anchor = results.get("trl_default", {})
    for name in CONFIGS:
        r = results.get(name, {})
        if "tokens_per_s" in r and "tokens_per_s" in anchor:
            r["speed_vs_trl_default"] = r["tokens_per_s"] / anchor["tokens_per_s"]
            r["cpu_speed_vs_trl_default"] = r["tokens_per_cpu_s"] / anchor["tokens_per_cpu_s"]
            r["memory_vs_trl_default"] = r["peak_mem_gb"] / anchor["peak_mem_gb"] if anchor["peak_mem_gb"] > 0 else None
    out = Path(args.out) if args.out else work / "results.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def _device(gpu: bool) -> str:
    import platform

    import torch

    if gpu:
        return torch.cuda.get_device_name()
    return f"cpu ({os.cpu_count()} visible cores, {platform.processor() or platform.machine()}), torch {torch.__version__}"


if __name__ == "__main__":
    main()
