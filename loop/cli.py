"""The ``herd`` command. Each stage registers its own subcommands from its ``cli`` module.

Stage CLI modules import only argparse at module level (heavy imports happen inside the
handlers), so ``herd --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

#: Modules that define ``register(subparsers)``; order = order in ``herd --help``.
STAGE_CLIS: list[str] = [
    "herd.loop.core_cli",
    "herd.loop.run_cli",
    "herd.loop.eval_cli",
    "herd.loop.sample_cli",
    "herd.sft.cli",
    "herd.sft.curation.cli",
    "herd.preference.cli",
    "herd.safety.cli",
]


class CLIError(Exception):
    """An error the user caused (bad config, missing file): printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="herd",
        description="herd: the Llama 3 post-training loop (RM, rejection sampling, SFT, DPO, safety, eval).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in STAGE_CLIS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1") if os.environ.get("HERD_OFFLINE", "1") == "1" else None
    parser = build_parser()
    # ``key.path=value`` overrides may come after options (``herd run X.yaml --workdir W a=1``),
    # which plain argparse cannot interleave with a positional list.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any("=" not in e or e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides or []) + extra
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from herd.core.config import ConfigError

    try:
        return int(args.handler(args) or 0)
    except (ConfigError, CLIError, FileNotFoundError, ValueError) as e:
        print(f"herd {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
