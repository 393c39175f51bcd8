"""Semantic-dedup throughput: rows/s at 10k and 100k rows, split into embed / cluster / keep.

Data: synthetic paraphrases of real rows. Every distinct chosen dialogue of the shipped HH-RLHF
harmless test split is a *group*; the data set is each group's original plus seeded surface
paraphrases (herd.sft.curation.paraphrase) until there are N rows, so the right answer is
"one row per group" and the surplus kept is the duplicates dedup missed.

Two ways to get the embeddings of N rows:

* ``--embed real``: encode all N dialog texts with the real encoder (the honest end-to-end
  time; on a shared 2-core CPU 100k rows take hours, see docs/benchmarks/curation.md);
* ``--embed projected`` (default): encode every group's real original plus ``--para-rows`` real
  text paraphrases, which measures the encoder's per-row cost and two cosine distributions
  (original -> its paraphrase, original -> nearest other original). The N vectors are then the
  real originals, synthetic distinct dialogs at "nearest other dialog" cosines from them, and
  paraphrases at "paraphrase" cosines (``--dup-fraction`` of the rows), so the right answer is
  known (one row per distinct dialog) and most rows are distinct, as in a real SFT set. Cluster
  and keep times are measured on all N vectors; the embed time at N is the measured per-row cost
  times N (the encoder's cost is per row, independent of N).

Anchor (measured in the same run): the exact all-pairs greedy keep (one cluster, no k-means),
which is what the paper's rule costs without clustering. Ratios are anchor time / ours.

    python bench/dedup_throughput.py --sizes 1000 10000 100000 --out /tmp/dedup.json
    python bench/dedup_throughput.py --sizes 10000 --embed real --device cuda   # a GPU box
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads: contention-independent work done."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, cpu_seconds() - self.cpu


def hh_groups() -> list[list[dict]]:
    from herd.core.chat_data import hh_to_messages

    seen, groups = set(), []
    with gzip.open(REPO / "data" / "hh-rlhf-harmless" / "test.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            m = hh_to_messages(json.loads(line))
            if m[0]["content"] in seen or not all(x["content"] for x in m):
                continue
            seen.add(m[0]["content"])
            groups.append(m)
    return groups


def synthetic_dialogs(groups: list[list[dict]], n: int) -> tuple[list[list[dict]], np.ndarray]:
    """N dialogs (originals first, then paraphrase rounds) and each row's group id."""
    from herd.sft.curation.paraphrase import paraphrase_messages

    dialogs, gid = [], []
    variant = 0
    while len(dialogs) < n:
        for g, messages in enumerate(groups):
            if len(dialogs) == n:
                break
            dialogs.append(messages if variant == 0 else paraphrase_messages(messages, seed=variant * 100003 + g))
            gid.append(g)
        variant += 1
    return dialogs, np.array(gid)


def synthetic_rows(groups: list[list[dict]], n: int) -> tuple[list[str], np.ndarray]:
    """N dialog texts (see :func:`synthetic_dialogs`) and each row's group id."""
    from herd.sft.curation.rows import dialog_text

    dialogs, gid = synthetic_dialogs(groups, n)
    return [dialog_text({"messages": m}) for m in dialogs], gid


def run_cli(n: int, groups, args) -> dict:
    """``herd curate`` end to end on N rows written to a JSONL file: reading, every default
    rule, the difficulty proxy, embedding, clustering, the greedy keep, and writing the output
    (data, removed rows, summary, histograms). Timed from outside, in a fresh process."""
    import subprocess
    import tempfile

    import yaml

    dialogs, gid = synthetic_dialogs(groups, n)
    with tempfile.TemporaryDirectory(prefix="herd-curate-bench-") as tmp:
        tmp = Path(tmp)
        rows_file = tmp / "rows.jsonl"
        with rows_file.open("w", encoding="utf-8") as f:
            for m, g in zip(dialogs, gid):
                f.write(json.dumps({"messages": m, "group": int(g)}) + "\n")
        dedup = {"threshold": args.threshold, "cluster_size": args.cluster_size, "passes": args.passes,
                 "precision": args.precision}
        dedup |= {k: v for k, v in (("batch_tokens", args.batch_tokens), ("cpu_workers", args.cpu_workers),
                                      ("device", args.device)) if v is not None}
        cfg = {"input": str(rows_file), "output": str(tmp / "out"), "rules": {"language": {"expected": "en"}},
               "dedup": dedup}
        (tmp / "curate.yaml").write_text(yaml.safe_dump(cfg))
        cmd = [sys.executable, "-m", "herd.loop.cli", "curate", "--config", str(tmp / "curate.yaml")]
        with Timer() as t:
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        summary = json.loads((tmp / "out" / "summary.json").read_text())

        def groups_in(name: str, only_dedup: bool = False) -> set[int]:
            with (tmp / "out" / name).open(encoding="utf-8") as f:
                rows = (json.loads(line) for line in f)
                return {r["group"] for r in rows if not only_dedup or r.get("removed_by") == "semantic_dedup"}

        kept_groups = groups_in("data.jsonl")
        reaching_dedup = kept_groups | groups_in("removed.jsonl", only_dedup=True)
    secs = summary["dedup"]["seconds"]
    row = {
        "rows": n, "mode": "herd curate CLI", "wall_s": t.wall, "rows_per_s": n / t.wall,
        "steps": summary["steps"], "dedup_seconds": secs, "clusters": summary["dedup"]["clusters"],
        "rows_out": summary["rows_out"], "distinct_groups_reaching_dedup": len(reaching_dedup),
        "missed_duplicates": summary["rows_out"] - len(reaching_dedup),
        "unique_texts": len({json.dumps(m) for m in dialogs}), "loadavg": os.getloadavg(),
    }
    print(json.dumps(row), flush=True)
    return row


def measure_encoder(groups, args):
    """Encode every group's real original plus ``--para-rows`` real text paraphrases: gives the
    encoder's per-row cost, the base vectors, and the measured cosine distributions."""
    from herd.sft.curation.config import DedupConfig
    from herd.sft.curation.embed import DialogEncoder
    from herd.sft.curation.paraphrase import paraphrase_messages
    from herd.sft.curation.rows import dialog_text

    # Real mode measures everything at full size; a small sample here only gives the cosines.
    groups = groups[: args.groups if args.embed == "projected" else max(64, args.anchor_rows)]
    texts = [dialog_text({"messages": m}) for m in groups]
    texts += [dialog_text({"messages": paraphrase_messages(m, seed=g)}) for g, m in enumerate(groups[: args.para_rows])]
    cfg = DedupConfig(device=args.device, precision=args.precision, batch_tokens=args.batch_tokens,
                      cpu_workers=args.cpu_workers, cache_dir=args.embed_cache)
    enc = DialogEncoder(cfg)
    saved = args.encoder_cache
    if saved and saved.exists():  # a rerun of the dedup phases reuses a finished measurement
        z = np.load(saved)
        emb, t = z["emb"], argparse.Namespace(wall=float(z["wall"]), cpu=float(z["cpu"]))
    else:
        enc.encode(texts[:8])  # warm-up (first-call allocations)
        with Timer() as t:
            emb = enc.encode(texts)
        if saved:
            np.savez(saved, emb=emb, wall=t.wall, cpu=t.cpu)
    anchor = encoder_anchor(enc, texts[: args.anchor_rows]) if args.anchor_rows else None
    base, para = emb[: len(groups)], emb[len(groups):]
    para_cos = (base[: len(para)] * para).sum(1)
    nearest = np.full(len(base), -1.0, dtype=np.float32)
    for s in range(0, len(base), 1024):  # nearest other original, in blocks
        sims = base[s : s + 1024] @ base.T
        sims[np.arange(len(sims)), np.arange(s, s + len(sims))] = -1
        nearest[s : s + 1024] = sims.max(1)
    cost = {"rows": len(texts), "wall_s": t.wall, "cpu_s": t.cpu, "precision": enc.precision,
            "batch_tokens": enc.batch_tokens, "workers": enc.workers, "anchor": anchor}
    return enc, cfg, base, para_cos, nearest, cost


def encoder_anchor(enc, texts: list[str]) -> dict:
    """The same rows through sentence-transformers' own ``encode`` with its defaults (float32,
    32 rows per batch, torch's intra-op threads), then through herd's path, back to back in this
    process: the ratio is herd's encoder speed-up on this machine, whatever else runs on it."""
    import torch

    model = enc.model
    model.max_seq_length = enc.max_tokens
    with Timer() as ta, torch.inference_mode():
        ref = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    with Timer() as th:
        ours = enc.encode(texts)
    cos = (ref * ours).sum(1)
    return {"rows": len(texts), "library_default_wall_s": ta.wall, "library_default_cpu_s": ta.cpu,
            "herd_wall_s": th.wall, "herd_cpu_s": th.cpu, "speedup_wall": ta.wall / th.wall,
            "cos_to_library_min": float(cos.min()), "cos_to_library_median": float(np.median(cos))}


def _at_cosine(anchor: np.ndarray, cos: np.ndarray, rng) -> np.ndarray:
    """Unit vectors at the given cosines to ``anchor`` rows, in uniformly random directions."""
    u = rng.standard_normal(anchor.shape).astype(np.float32)
    u -= (u * anchor).sum(1, keepdims=True) * anchor
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    c = cos[:, None].astype(np.float32)
    return c * anchor + np.sqrt(np.clip(1 - c * c, 0, None)) * u


def projected_set(n: int, base, para_cos, nearest, dup_fraction: float, seed: int):
    """N vectors: the real originals, then synthetic *distinct* dialogs (at cosines to a real
    original drawn from the measured nearest-distinct-dialog cosines), then paraphrases of random
    distinct rows (at cosines drawn from the measured paraphrase cosines). Returns (vectors,
    number of distinct rows)."""
    rng = np.random.default_rng(seed)
    n_distinct = max(1, round(n * (1 - dup_fraction)))
    n_real = min(n_distinct, len(base))
    sib_of = np.arange(n_distinct - n_real) % len(base)
    siblings = _at_cosine(base[sib_of], rng.choice(nearest, size=len(sib_of)), rng)
    distinct = np.concatenate([base[:n_real], siblings])
    src = rng.integers(0, n_distinct, n - n_distinct)
    dups = _at_cosine(distinct[src], rng.choice(para_cos, size=len(src)), rng)
    emb = np.concatenate([distinct, dups])
    return emb[rng.permutation(n)], n_distinct


def run_size(n, groups, base, para_cos, nearest, enc, cfg, enc_cost, args) -> dict:
    from herd.sft.curation.dedup import greedy_keep, semantic_dedup
    from herd.sft.curation.embed import embed_texts

    if args.embed == "real":
        texts, gid = synthetic_rows(groups, n)
        n_distinct = len(set(gid.tolist()))
        with Timer() as te:
            emb = embed_texts(texts, enc, cfg)
        embed = {"wall_s": te.wall, "cpu_s": te.cpu, "how": "measured", "unique_texts": len(set(texts)),
                 "rows_per_s": n / te.wall}
    else:
        emb, n_distinct = projected_set(n, base, para_cos, nearest, args.dup_fraction, seed=n)
        per_wall, per_cpu = enc_cost["wall_s"] / enc_cost["rows"], enc_cost["cpu_s"] / enc_cost["rows"]
        embed = {"wall_s": per_wall * n, "cpu_s": per_cpu * n, "how": f"projected from {enc_cost['rows']} rows"}
    priority = np.ones(n)
    with Timer() as td:
        res = semantic_dedup(emb, priority, args.threshold, args.cluster_size, seed=0, passes=args.passes)
    cluster_s, keep_s = res.seconds["cluster"], res.seconds["greedy_keep"]
    row = {
        "rows": n, "distinct": n_distinct, "clusters": res.n_clusters, "kept": int(res.keep.sum()),
        "missed_duplicates": int(res.keep.sum()) - n_distinct,
        "embed": embed, "cluster_s": cluster_s, "keep_s": keep_s, "dedup_wall_s": td.wall, "dedup_cpu_s": td.cpu,
        "dedup_rows_per_s": n / (cluster_s + keep_s),
        "end_to_end_rows_per_s": n / (embed["wall_s"] + cluster_s + keep_s),
        "loadavg": os.getloadavg(),
    }
    if n <= args.anchor_max:
        with Timer() as ta:
            exact, _ = greedy_keep(np.ascontiguousarray(emb), args.threshold)
        row.update(anchor_exact_keep_s=ta.wall, anchor_cpu_s=ta.cpu, anchor_kept=int(exact.sum()),
                   speedup_vs_anchor=ta.wall / (cluster_s + keep_s))
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--embed", choices=["projected", "real", "cli"], default="projected",
                    help="cli: run `herd curate` end to end on N rows (no anchor; see run_cli)")
    ap.add_argument("--groups", type=int, default=100000, help="at most this many real HH dialogs (all ~2.3k by default)")
    ap.add_argument("--para-rows", type=int, default=300, help="real text paraphrases encoded for the cosine distribution")
    ap.add_argument("--dup-fraction", type=float, default=0.5, help="projected mode: share of rows that are paraphrases")
    ap.add_argument("--device", default=None)
    ap.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto")
    ap.add_argument("--batch-tokens", type=int, default=None, help="encoder token budget per batch (None: herd's default)")
    ap.add_argument("--cpu-workers", type=int, default=None, help="encoder threads on CPU (None: herd's default)")
    ap.add_argument("--anchor-rows", type=int, default=1000,
                    help="rows encoded by both sentence-transformers' defaults and herd's path for the ratio (0: skip)")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--cluster-size", type=int, default=2000)
    ap.add_argument("--anchor-max", type=int, default=100000, help="largest N for the exact all-pairs anchor")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--encoder-cache", type=Path, default=None,
                    help="npz holding the encoder measurement (written on first use, reused after)")
    ap.add_argument("--embed-cache", type=Path, default=None,
                    help="real mode: embedding cache dir, so a rerun with other dedup settings skips encoding")
    ap.add_argument("--passes", type=int, default=2, help="dedup partitions (1 = the paper's single clustering)")
    args = ap.parse_args()

    import torch

    groups = hh_groups()
    load0 = os.getloadavg()
    if args.embed == "cli":
        results = [run_cli(n, groups, args) for n in args.sizes]
        if args.out:
            args.out.write_text(json.dumps({"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                                        "loadavg_start": load0, "loadavg_end": os.getloadavg()},
                                            "args": {k: str(v) for k, v in vars(args).items()}, "sizes": results},
                                           indent=2) + "\n")
        return 0
    enc, cfg, base, para_cos, nearest, enc_cost = measure_encoder(groups, args)
    encoder = {
        **enc_cost, "rows_per_s": enc_cost["rows"] / enc_cost["wall_s"],
        "cpu_ms_per_row": 1000 * enc_cost["cpu_s"] / enc_cost["rows"],
        "paraphrase_cos": {q: float(np.quantile(para_cos, q)) for q in (0.0, 0.05, 0.5)},
        "nearest_distinct_cos": {q: float(np.quantile(nearest, q)) for q in (0.5, 0.95, 1.0)},
        "paraphrases_at_or_above_threshold": float((para_cos >= args.threshold).mean()),
    }
    print(json.dumps({"encoder": encoder}), flush=True)
    results = [run_size(n, groups, base, para_cos, nearest, enc, cfg, enc_cost, args) for n in args.sizes]
    report = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": enc.device, "loadavg_start": load0, "loadavg_end": os.getloadavg()},
        "args": {k: str(v) for k, v in vars(args).items()}, "encoder": encoder, "sizes": results,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
