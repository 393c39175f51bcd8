"""SFT throughput: herd's SFT path vs TRL's SFTTrainer with its defaults, same data, same process.

Metric: useful (non-pad) tokens trained per second of ``trainer.train()``, one full epoch over the
same HH-RLHF conversations (the chosen side of data/hh-rlhf-harmless, i.e. its real length mix),
so both arms process exactly the same tokens and the ratio is the speed-up. Arms:

* ``trl_defaults``      TRL SFTTrainer on a ``messages`` dataset, TRL 1.16 defaults (batch 8,
                        max_length 1024, no packing, gradient checkpointing on);
* ``trl_defaults_gc0``  the same with gradient checkpointing off (herd's default), to show how
                        much of the gap packing alone explains;
* ``herd``              herd.sft's trainer (same TRL underneath): best-fit packed rows of
                        max_length 1024, batch 8, assistant-only labels, gradient checkpointing off.

Precision is fp32 in every arm on CPU (TRL would otherwise autocast to bf16 on CPU, a different
arithmetic). Dataset preparation is timed separately. On a shared machine, run with ``--threads 1``
(the default) and several ``--repeats``; the report takes each arm's best repeat.

Usage: python bench/sft_throughput.py [--rows 600] [--shape small] [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
HH = REPO / "data" / "hh-rlhf-harmless" / "test.jsonl.gz"
BATCH, MAX_LENGTH = 8, 1024  # TRL SFTConfig defaults (per_device_train_batch_size, max_length)


def conversations(n: int) -> list[list[dict]]:
    """The first ``n`` usable HH-RLHF chosen dialogues, in file order (the real length mix)."""
    from herd.core.chat_data import check_messages, hh_to_messages

    out = []
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        for line in f:
            messages = hh_to_messages(json.loads(line))
            if check_messages(messages) is None:
                out.append(messages)
            if len(out) == n:
                break
    return out


def trl_trainer(model: str, convs, workdir: Path, gradient_checkpointing: bool):
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(workdir / "trl"), num_train_epochs=1, report_to="none", save_strategy="no",
        use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available(), disable_tqdm=True,
        gradient_checkpointing=gradient_checkpointing,
    )
    assert args.per_device_train_batch_size == BATCH and args.max_length == MAX_LENGTH and not args.packing
    t = time.perf_counter()
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([{"messages": c} for c in convs]))
    prep = time.perf_counter() - t
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    return trainer, tokens, prep


def herd_trainer(model: str, convs, workdir: Path):
    from herd.sft import SFTConfig
    from herd.sft.train import build_trainer

    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "chats.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in convs))
    cfg = SFTConfig(
        model=model, data=[str(data)], output_dir=str(workdir / "herd"), num_epochs=1,
        per_device_batch_size=BATCH, max_length=MAX_LENGTH, packing=True, save_steps=10**9,
        logging_steps=10, dtype="auto",
    )
    t = time.perf_counter()
    trainer, _, stats = build_trainer(cfg)
    return trainer, stats.tokens, time.perf_counter() - t


def timed_epoch(trainer, tokens: int, prep: float) -> dict:
    t = time.perf_counter()
    trainer.train()
    dt = time.perf_counter() - t
    return {"useful_tokens": tokens, "train_s": round(dt, 2), "tokens_per_s": round(tokens / dt, 1),
            "steps": trainer.state.global_step, "prep_s": round(prep, 2)}


def run_arm(name: str, model: str, convs, workdir: Path) -> dict:
    if name == "herd":
        trainer, tokens, prep = herd_trainer(model, convs, workdir)
    else:
        trainer, tokens, prep = trl_trainer(model, convs, workdir, gradient_checkpointing=(name == "trl_defaults"))
    result = timed_epoch(trainer, tokens, prep)
    print(name, json.dumps(result), flush=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=400, help="HH-RLHF conversations (max 2308)")
    p.add_argument("--shape", default="micro", choices=["micro", "small"], help="tiny model shape")
    p.add_argument("--model", default=None, help="use this model dir instead of building a tiny one")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 on shared CPUs)")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from herd.core.tiny import build_tiny

    work = Path(tempfile.mkdtemp(prefix="sft_bench_"))
    model = args.model or str(build_tiny(work / "tiny", shape=args.shape, seed=0)["policy"])
    convs = conversations(args.rows)
    arms = ["trl_defaults", "trl_defaults_gc0", "herd"]
    runs = {a: [] for a in arms}
    for r in range(args.repeats):
        for arm in arms if r % 2 == 0 else arms[::-1]:  # alternate order: drift in machine load hits both
            runs[arm].append(run_arm(arm, model, convs, work / f"{arm}{r}"))
    best = {a: max(runs[a], key=lambda x: x["tokens_per_s"]) for a in arms}
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "threads": args.threads, "torch": torch.__version__,
                    "trl": __import__("trl").__version__, "transformers": __import__("transformers").__version__},
        "setup": {"rows": len(convs), "model": args.model or f"tiny {args.shape}", "batch": BATCH, "max_length": MAX_LENGTH},
        "runs": runs, "best": best,
        "ratio_vs_trl_defaults": round(best["herd"]["tokens_per_s"] / best["trl_defaults"]["tokens_per_s"], 3),
        "ratio_vs_trl_gc0": round(best["herd"]["tokens_per_s"] / best["trl_defaults_gc0"]["tokens_per_s"], 3),
    }
    print(json.dumps({k: report[k] for k in ("best", "ratio_vs_trl_defaults", "ratio_vs_trl_gc0")}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
