"""``herd sft`` and ``python -m herd.sft``: run one SFT stage from a YAML config plus overrides.

Only argparse at module level: ``herd --help`` must not import torch.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="stage config YAML (see recipes/sft/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. max_steps=10 lora.r=8")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sft",
        help="supervised fine-tuning on chat data (assistant-only loss, packing, LoRA)",
        description="Multi-process: accelerate launch --config_file recipes/accelerate/ddp.yaml -m herd.sft --config X.yaml",
    )
    add_arguments(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from herd.core.config import load_config
    from herd.sft.config import SFTConfig
    from herd.sft.train import train_sft

    cfg = load_config(SFTConfig, args.config, args.overrides)
    out = train_sft(cfg)
    if os.environ.get("RANK", "0") == "0":  # one line per run, not per process
        print(f"sft: wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry for ``python -m herd.sft``; user errors print one line and exit 2."""
    import logging

    if os.environ.get("HERD_OFFLINE", "1") == "1":  # same rule as the herd command
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m herd.sft", description="herd SFT stage")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from herd.core.chat_data import ChatDataError
    from herd.core.config import ConfigError

    try:
        return run(args)
    except (ConfigError, ChatDataError, FileNotFoundError, ValueError) as e:
        print(f"herd sft: error: {e}", file=sys.stderr)
        return 2
