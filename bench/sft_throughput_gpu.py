"""GPU variant of bench/sft_throughput.py: herd SFT vs TRL SFTTrainer defaults on a Llama-3.2-1B shape.

Follows ../shared/bench/trl_gpu_anchor.py (Llama 3.2 1B shape: 16 layers, hidden 2048, GQA 32/8,
vocab 128256, tied embeddings; random bf16 weights; one GPU; one process for every arm), but
trains on the real HH-RLHF length mix (chosen side of data/hh-rlhf-harmless) instead of fixed
514-token rows, because packing only pays where lengths vary. The tokenizer is herd's locally
built Llama-3-format BPE (no Hub access on the GPU box); its vocabulary is smaller than Llama 3's,
so conversations are somewhat longer in tokens than with the real tokenizer — the length *mix*
is what matters here, and both arms see identical token ids.

Arms, same process, same card (each timed over --steps optimizer steps after --warmup steps):
  trl_defaults      TRL 1.16 SFTTrainer defaults: batch 8, max_length 1024, no packing, padding
                    to the longest row in the batch, gradient checkpointing on, bf16;
  trl_defaults_gc0  the same with gradient checkpointing off (the anchor's 40.7k tok/s row);
  herd              herd.sft: best-fit packed rows of 1024 tokens, batch 8, gradient checkpointing
                    off, bf16, flash-attention-2 padding-free when flash_attn is installed (else
                    sdpa with per-conversation block masks).
Metric: useful (non-pad) tokens per second, and MFU = tokens/s x 6N / 790 TFLOP/s (the bf16 rate
measured on this workplace's H100/H200). The ratio herd / trl_defaults is the figure to report.

Usage (GPU box): python bench/sft_throughput_gpu.py [--steps 30] [--warmup 5] [--rows 2308]
Writes $OUT/sft_gpu.json (or ./sft_gpu.json). ``--tiny`` runs a CPU smoke test with a toy shape.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets.fingerprint  # noqa: E402

# datasets 5.2 on Python 3.12 fails to hash TRL's map functions there (see ../shared/bench/README.md)
datasets.fingerprint.Hasher.hash = classmethod(lambda cls, value: secrets.token_hex(8))

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

PEAK_FLOPS = 790e12
BATCH, MAX_LENGTH = 8, 1024


def build_model(out: Path, tiny: bool) -> tuple[str, int]:
    """Llama-3.2-1B-shaped random model (bf16) + herd's Llama-3-format tokenizer; returns (dir, params)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from herd.core.tiny import SHAPES, build_tokenizer, llama_config

    tok = build_tokenizer(out, vocab_size=8192)
    cfg = llama_config(tok, SHAPES["micro"])  # Llama 3 special-token ids; the micro shape for --tiny
    if not tiny:
        cfg.update(dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                        num_attention_heads=32, num_key_value_heads=8, head_dim=64, tie_word_embeddings=True,
                        max_position_embeddings=8192))
    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(dev):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16 if dev == "cuda" else torch.float32)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    del model
    torch.cuda.empty_cache() if dev == "cuda" else None
    return str(out), n


class StepClock(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


class CountingCollator:
    """Wraps a collator and records the non-pad tokens of every micro-batch it builds."""

    def __init__(self, inner):
        self.inner, self.tokens = inner, []

    def __call__(self, examples):
        self.tokens.append(sum(len(e["input_ids"]) for e in examples))
        return self.inner(examples)


def measure(name: str, trainer, warmup: int, params: int) -> dict:
    clock, counter = StepClock(), CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    trainer.add_callback(clock)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        trainer.train()
    except Exception as e:  # keep the other arms' figures
        return {"error": repr(e)[:400]}
    accum = trainer.args.gradient_accumulation_steps
    # dataloader prefetch may build a batch or two beyond the last step: count only consumed ones
    per_step = [sum(counter.tokens[i * accum:(i + 1) * accum]) for i in range(len(clock.times))]
    dt = clock.times[-1] - clock.times[warmup - 1]
    tokens = sum(per_step[warmup:])
    tps = tokens / dt
    out = {"steps_timed": len(clock.times) - warmup, "useful_tokens_per_s": round(tps),
           "mfu_6N_vs_790T": round(tps * 6 * params / PEAK_FLOPS, 4),
           "mean_useful_tokens_per_step": round(tokens / (len(clock.times) - warmup)),
           "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None}
    print(name, json.dumps(out), flush=True)
    return out


def trl_arm(model: str, convs, work: Path, steps: int, gc: bool):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    args = SFTConfig(output_dir=str(work / f"trl{int(gc)}"), max_steps=steps, report_to="none", save_strategy="no",
                     gradient_checkpointing=gc, bf16=cuda, use_cpu=not cuda, disable_tqdm=True,
                     model_init_kwargs={"dtype": torch.bfloat16 if cuda else torch.float32})
    from herd.core.models import load_tokenizer

    ds = Dataset.from_list([{"messages": c} for c in convs])
    return SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=load_tokenizer(model))


def herd_arm(model: str, convs, work: Path, steps: int):
    from herd.sft import SFTConfig
    from herd.sft.train import build_trainer

    work.mkdir(parents=True, exist_ok=True)
    data = work / "chats.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in convs))
    cfg = SFTConfig(model=model, data=[str(data)], output_dir=str(work / "herd"), max_steps=steps,
                    per_device_batch_size=BATCH, max_length=MAX_LENGTH, packing=True, save_steps=10**9,
                    logging_steps=10, dtype="auto")
    trainer, _, stats = build_trainer(cfg)
    print("herd data", json.dumps(stats.as_dict()), flush=True)
    return trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rows", type=int, default=2308)
    p.add_argument("--tiny", action="store_true", help="CPU smoke test: micro shape, 4 steps")
    args = p.parse_args()
    if args.tiny:
        args.steps, args.warmup, args.rows = 4, 1, 64

    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sft_throughput import conversations

    work = Path(tempfile.mkdtemp(prefix="sft_gpu_bench_"))
    model, params = build_model(work / "model", args.tiny)
    convs = conversations(args.rows)
    import importlib.util

    results = {"env": {"params": params, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                       "torch": torch.__version__, "trl": __import__("trl").__version__,
                       "transformers": __import__("transformers").__version__,
                       "flash_attn": importlib.util.find_spec("flash_attn") is not None, "rows": len(convs)}}
    arms = {"trl_defaults": lambda: trl_arm(model, convs, work, args.steps, gc=True),
            "trl_defaults_gc0": lambda: trl_arm(model, convs, work, args.steps, gc=False),
            "herd": lambda: herd_arm(model, convs, work / "herd_run", args.steps)}
    for name, make in arms.items():
        trainer = make()
        results[name] = measure(name, trainer, args.warmup, params)
        del trainer
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    ok = all("useful_tokens_per_s" in results[a] for a in arms)
    if ok:
        base = results["trl_defaults"]["useful_tokens_per_s"]
        results["ratio_vs_trl_defaults"] = round(results["herd"]["useful_tokens_per_s"] / base, 3)
        results["ratio_vs_trl_gc0"] = round(
            results["herd"]["useful_tokens_per_s"] / results["trl_defaults_gc0"]["useful_tokens_per_s"], 3)
    out = Path(os.environ.get("OUT", ".")) / "sft_gpu.json"
    out.write_text(json.dumps(results, indent=1))
    print("DONE", json.dumps(results))


if __name__ == "__main__":
    main()
