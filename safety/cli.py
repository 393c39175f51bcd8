"""``herd safety ...``: render guard prompts, classify and filter JSONL, detect refusals, train.

Only argparse at module level (``herd --help`` stays fast); the work is imported in the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys

from pathlib import Path

#: herd's own labelled data (in a source checkout; pass paths explicitly elsewhere).
REPO_DATA = Path(__file__).resolve().parent.parent / "data" / "safety"
SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "weights"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("safety", help="safety classifiers: guard prompts, classify, refusals, guard training")
    s = p.add_subparsers(dest="safety_command", metavar="SUBCOMMAND")
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])

    pr = s.add_parser("prompt", help="print the guard prompt for a conversation read from stdin (JSON)")
    pr.add_argument("--policy", help="policy file (YAML/JSON); default Llama Guard 3 8B S1-S14")
    pr.add_argument("--form", default="builtin", choices=["builtin", "cookbook", "template", "auto"])
    pr.add_argument("--tokenizer", help="tokenizer directory (for --form template/auto)")
    pr.set_defaults(handler=_prompt)

    c = s.add_parser("classify", help="classify JSONL rows (prompt, optional response); adds safe, categories, p_unsafe")
    _io(c)
    c.add_argument("--model", help="guard model directory, a .npz head file, 'embedding' (default) or 'cascade:DIR'")
    c.add_argument("--policy", help="policy file (YAML/JSON)")
    c.add_argument("--threshold", type=float, default=0.5)
    c.add_argument("--backend", default="hf", choices=["hf", "vllm"], help="generative guards only")
    c.add_argument("--form", default="auto", choices=["auto", "builtin", "cookbook", "template"], help="generative guards only")
    c.add_argument("--fail-open", action="store_true", help="treat rows that fail to classify as safe (default: unsafe)")
    c.add_argument("--batch-size", type=int, default=64)
    c.set_defaults(handler=_classify)

    r = s.add_parser("refusal", help="label JSONL rows (prompt, response) as refusal or compliance")
    _io(r)
    r.add_argument("--weights", help="refusal head .npz (default: the shipped one)")
    r.add_argument("--threshold", type=float, default=0.5)
    r.set_defaults(handler=_refusal)

    t = s.add_parser("train", help="fine-tune a causal LM into a Llama-Guard-format guard")
    t.add_argument("--config", help="YAML with GuardTrainConfig keys")
    t.add_argument("--base-model")
    t.add_argument("--data", help="labelled JSONL (llama-cookbook TrainingExample rows)")
    t.add_argument("--output-dir")
    t.add_argument("overrides", nargs="*", help="key=value overrides, e.g. epochs=2 learning_rate=2e-5")
    t.set_defaults(handler=_train)

    h = s.add_parser("train-heads", help="retrain the shipped embedding-guard and refusal heads (reproduces safety/weights/)")
    h.add_argument("--out-dir", default=str(SHIPPED_WEIGHTS))
    h.add_argument("--guard-data", default=f"{REPO_DATA}/guard.jsonl")
    h.add_argument("--refusal-data", default=f"{REPO_DATA}/refusal.jsonl")
    h.add_argument("--split", default="train", help="rows used for training ('all' = every row)")
    h.set_defaults(handler=_train_heads)

    e = s.add_parser("eval", help="precision/recall/F1/AUPRC/FPR of a guard on labelled JSONL")
    e.add_argument("--input", required=True)
    e.add_argument("--model", help="as for classify")
    e.add_argument("--split")
    e.add_argument("--threshold", type=float, default=0.5)
    e.add_argument("--output", help="write the metrics JSON here (default: stdout)")
    e.set_defaults(handler=_eval)


def _io(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="input JSONL")
    p.add_argument("--output", required=True, help="output JSONL (written atomically)")


def _read_conversation(text: str):
    from herd.safety.data import DataError, conversation_of

    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"stdin: not valid JSON ({e.msg})") from None
    if isinstance(obj, dict):
        if "messages" in obj or "conversation" in obj:
            obj = obj.get("messages", obj.get("conversation"))
        elif isinstance(obj.get("prompt"), str):
            obj = conversation_of(obj["prompt"], obj.get("response"))
    if not isinstance(obj, list):
        raise DataError("stdin: expected a list of messages, {'messages': [...]} or {'prompt', 'response'}")
    return obj


def _policy(path: str | None):
    from herd.safety.taxonomy import Policy

    return Policy.from_file(path) if path else None


def _prompt(args) -> int:
    from herd.safety.rendering import render_guard_prompt

    tokenizer = None
    if args.tokenizer:
        from herd.core.models import load_tokenizer

        tokenizer = load_tokenizer(args.tokenizer)
    conv = _read_conversation(sys.stdin.read())
    sys.stdout.write(render_guard_prompt(conv, _policy(args.policy), args.form, tokenizer))
    return 0


def _build(args):
    from herd.safety import load_classifier

    kwargs = {"threshold": args.threshold, "fail_closed": not getattr(args, "fail_open", False)}
    policy = _policy(getattr(args, "policy", None))
    if policy is not None:
        kwargs["policy"] = policy
    model = args.model
    if model and model != "embedding" and not model.endswith(".npz"):
        kwargs.update(backend=getattr(args, "backend", "hf"), form=getattr(args, "form", "auto"))
    return load_classifier(model, **kwargs)


def _classify(args) -> int:
    from herd.core.artifacts import atomic_write_jsonl
    from herd.safety.data import read_classify_input

    rows = read_classify_input(args.input)
    with _build(args) as clf:
        verdicts = []
        for start in range(0, len(rows), args.batch_size):
            verdicts.extend(clf.classify([c for _, c in rows[start:start + args.batch_size]]))
    out, errors = [], 0
    for (row, _), v in zip(rows, verdicts):
        row = dict(row, safe=v.safe, categories=v.categories, p_unsafe=v.p_unsafe)
        if v.error:
            errors += 1
            row["error"] = v.error
        out.append(row)
    atomic_write_jsonl(args.output, out)
    unsafe = sum(not r["safe"] for r in out)
    print(f"{len(out)} rows: {unsafe} unsafe, {errors} failed ({'counted safe' if args.fail_open else 'counted unsafe'}) -> {args.output}", file=sys.stderr)
    return 0


def _refusal(args) -> int:
    from herd.core.artifacts import atomic_write_jsonl
    from herd.safety.data import read_refusal_input
    from herd.safety.refusal import RefusalDetector

    rows = read_refusal_input(args.input)
    det = RefusalDetector(args.weights, threshold=args.threshold)
    verdicts = det.detect([p for _, p, _ in rows], [r for _, _, r in rows])
    out = [dict(row, refusal=v.refusal, p_refusal=v.p_refusal) for (row, _, _), v in zip(rows, verdicts)]
    atomic_write_jsonl(args.output, out)
    print(f"{len(out)} rows: {sum(r['refusal'] for r in out)} refusals -> {args.output}", file=sys.stderr)
    return 0


def _train(args) -> int:
    from herd.core.config import apply_overrides, from_dict, read_yaml
    from herd.safety.guard_training import GuardTrainConfig, train_guard

    data = read_yaml(args.config) if args.config else {}
    for key, value in (("base_model", args.base_model), ("data", args.data), ("output_dir", args.output_dir)):
        if value:
            data[key] = value
    data = apply_overrides(data, args.overrides)
    cfg = from_dict(GuardTrainConfig, data, source=args.config or "command line")
    for key in ("base_model", "data", "output_dir"):
        if not getattr(cfg, key):
            raise ValueError(f"herd safety train needs {key} (flag --{key.replace('_', '-')} or config key)")
    print(f"guard written to {train_guard(cfg)}", file=sys.stderr)
    return 0


def _train_heads(args) -> int:
    from herd.safety.embedding_guard import train_guard_heads
    from herd.safety.refusal import train_refusal_head
    from herd.safety.data import iter_jsonl, read_labelled

    split = None if args.split == "all" else args.split
    guard = train_guard_heads(read_labelled(args.guard_data, split))
    rows = [o for _, o in iter_jsonl(args.refusal_data) if split is None or o.get("split") == split]
    refusal = train_refusal_head([o["response"] for o in rows], [bool(o["refusal"]) for o in rows])
    out = Path(args.out_dir)
    guard.save(out / "embedding_guard.npz")
    refusal.save(out / "refusal_detector.npz")
    print(f"wrote {out / 'embedding_guard.npz'} ({guard.meta['rows']} rows) and {out / 'refusal_detector.npz'} ({refusal.meta['rows']} rows)", file=sys.stderr)
    return 0


def _eval(args) -> int:
    from herd.core.artifacts import atomic_write_json
    from herd.safety.data import read_labelled
    from herd.safety.metrics import evaluate

    examples = read_labelled(args.input, args.split)
    args.fail_open, args.policy = False, None
    with _build(args) as clf:
        verdicts = clf.classify([ex.conversation() for ex in examples])
    report = evaluate([ex.violated_category_codes for ex in examples], [v.p_unsafe for v in verdicts],
                      [v.categories for v in verdicts], args.threshold)
    if args.output:
        atomic_write_json(args.output, report)
    else:
        print(json.dumps(report, indent=2))
    return 0
