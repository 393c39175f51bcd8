"""Safety benchmark: the shipped embedding guard and refusal detector, with their anchors.

1. Embedding guard on XSTest prompts (Röttger et al. 2024; evaluation only, never trained on):
   recall on the 200 unsafe contrast prompts, FPR on the 250 safe ones, AUPRC.
2. Embedding guard on the held-out test split of herd's own data/safety/guard.jsonl,
   overall and per category.
3. Refusal detector vs the keyword-prefix baseline on the test split of data/safety/refusal.jsonl
   (accuracy, and per kind of row).
4. Optional (``--guard DIR``): a generative guard (e.g. a local Llama-Guard-3-1B/8B directory, on a
   GPU box) on the same XSTest prompts, so the shipped guard can be compared with it.

Usage: ``python bench/safety_eval.py [--guard DIR --backend vllm] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent


def xstest_rows() -> list[dict]:
    with open(REPO / "data" / "xstest" / "xstest_prompts.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def eval_xstest(classifier, rows) -> dict:
    from herd.safety.metrics import binary_metrics

    convs = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    t = time.perf_counter()
    verdicts = classifier.classify(convs)
    seconds = time.perf_counter() - t
    labels = [r["type"].startswith("contrast_") for r in rows]
    m = binary_metrics(labels, [v.p_unsafe for v in verdicts], getattr(classifier, "threshold", 0.5))
    by_type: dict[str, list[bool]] = defaultdict(list)
    for r, v in zip(rows, verdicts):
        by_type[r["type"]].append(not v.safe)
    return {
        "recall_on_contrast": m.recall, "fpr_on_safe": m.fpr, "auprc": m.auprc, "precision": m.precision,
        "f1": m.f1, "n_contrast": sum(labels), "n_safe": len(labels) - sum(labels),
        "flagged_share_by_type": {k: sum(v) / len(v) for k, v in sorted(by_type.items())},
        "seconds": seconds, "prompts_per_second": len(rows) / seconds,
    }


def eval_own_guard(classifier) -> dict:
    from herd.safety.data import read_labelled
    from herd.safety.metrics import evaluate

    test = read_labelled(REPO / "data" / "safety" / "guard.jsonl", "test")
    verdicts = classifier.classify([ex.conversation() for ex in test])
    report = evaluate([ex.violated_category_codes for ex in test], [v.p_unsafe for v in verdicts], [v.categories for v in verdicts])
    report["rows"] = len(test)
    return report


def eval_refusal() -> dict:
    from herd.safety.data import iter_jsonl
    from herd.safety.refusal import KeywordRefusalDetector, RefusalDetector

    rows = [o for _, o in iter_jsonl(REPO / "data" / "safety" / "refusal.jsonl") if o["split"] == "test"]
    prompts, responses = [r["prompt"] for r in rows], [r["response"] for r in rows]
    out = {"rows": len(rows)}
    for name, det in (("detector", RefusalDetector()), ("keyword_baseline", KeywordRefusalDetector())):
        pred = [v.refusal for v in det.detect(prompts, responses)]
        ok = [p == r["refusal"] for p, r in zip(pred, rows)]
        kinds: dict[str, list[bool]] = defaultdict(list)
        for o, r in zip(ok, rows):
            kinds[r["kind"]].append(o)
        out[name] = {"accuracy": sum(ok) / len(ok), "by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(kinds.items())}}
    out.update(refusal_cross_validated())
    return out


def refusal_cross_validated(folds: int = 5) -> dict:
    """The test split is small (about 50 rows), so also: grouped k-fold accuracy over all rows
    (each fold's head trained on the other folds, same features and C as the shipped head;
    groups = response text, so no text is on both sides), and the baseline on all rows."""
    import numpy as np
    from sklearn.model_selection import GroupKFold

    from herd.safety.data import iter_jsonl
    from herd.safety.encoder import shared_encoder
    from herd.safety.heads import fit_logistic
    from herd.safety.refusal import DEFAULT_C, keyword_refusal, refusal_features

    rows = [o for _, o in iter_jsonl(REPO / "data" / "safety" / "refusal.jsonl")]
    x = refusal_features(shared_encoder(), [r["response"] for r in rows])
    y = np.array([r["refusal"] for r in rows])
    groups = [r["response"].strip().lower() for r in rows]
    pred = np.zeros(len(rows), dtype=bool)
    for tr, te in GroupKFold(n_splits=folds).split(x, y, groups):
        w, b = fit_logistic(x[tr], y[tr], DEFAULT_C)
        pred[te] = x[te] @ w + b >= 0
    kw = np.array([keyword_refusal(r["response"]) for r in rows])
    return {"all_rows": len(rows), f"detector_{folds}fold_cv_accuracy": float((pred == y).mean()),
            "keyword_baseline_all_rows_accuracy": float((kw == y).mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--guard", help="also evaluate a generative guard directory on XSTest")
    ap.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args(argv)

    import torch

    from herd.safety import load_classifier

    results = {"machine": {"cpus": os.cpu_count(), "cuda": torch.cuda.is_available(), "torch": torch.__version__}}
    rows = xstest_rows()
    emb = load_classifier("embedding")
    emb.classify([[{"role": "user", "content": "warm-up"}]])  # load the encoder outside the timing
    results["embedding_guard_xstest"] = eval_xstest(emb, rows)
    results["embedding_guard_own_test"] = eval_own_guard(emb)
    results["refusal"] = eval_refusal()
    if args.guard:
        with load_classifier(args.guard, backend=args.backend) as guard:
            results["generative_guard_xstest"] = eval_xstest(guard, rows)
            g, e = results["generative_guard_xstest"], results["embedding_guard_xstest"]
            results["embedding_speedup_vs_generative"] = e["prompts_per_second"] / g["prompts_per_second"]
    text = json.dumps(results, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
