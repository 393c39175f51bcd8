"""Subcommands over core: ``herd tiny`` (build the tiny kit) and ``herd generate``."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tiny", help="build the tiny Llama-3-format tokenizer and models (no network)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--shape", default="micro", choices=["micro", "small"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_tiny)

    g = sub.add_parser("generate", help="generate replies from a model (vLLM or HF backend)")
    g.add_argument("--model", required=True, help="model directory")
    g.add_argument("--prompt", action="append", required=True, help="user message (repeatable)")
    g.add_argument("--backend", default="auto", choices=["auto", "vllm", "hf"])
    g.add_argument("-n", type=int, default=1, help="samples per prompt")
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(handler=_generate)


def _tiny(args) -> int:
    from herd.core.tiny import build_tiny

    paths = build_tiny(args.out, shape=args.shape, seed=args.seed)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _generate(args) -> int:
    from herd.core.chat import render_with
    from herd.core.generation import SamplingSpec, make_backend
    from herd.core.models import load_tokenizer

    tok = load_tokenizer(args.model)
    prompts = [render_with(tok, [{"role": "user", "content": p}], add_generation_prompt=True) for p in args.prompt]
    backend = make_backend(args.backend, args.model)
    try:
        spec = SamplingSpec(n=args.n, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed)
        for prompt, samples in zip(args.prompt, backend.generate(prompts, spec)):
            for s in samples:
                print(json.dumps({"prompt": prompt, "k": s.index, "text": s.text, "finish_reason": s.finish_reason, "tokens": len(s.token_ids)}, ensure_ascii=False))
    finally:
        backend.close()
    return 0
