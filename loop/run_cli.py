"""``herd run RECIPE [--workdir DIR] [overrides]`` and ``herd status --workdir DIR``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the post-training loop described by a round config (YAML)")
    p.add_argument("config", help="round config, e.g. recipes/demo.yaml")
    p.add_argument("--workdir", default=None, help="where artifacts go (default: runs/<name>)")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. rounds=3 sft.settings.learning_rate=2e-5")
    p.set_defaults(handler=_run)

    s = sub.add_parser("status", help="show each round's stages (done, stale, pending, failed) and key metrics")
    s.add_argument("--workdir", required=True)
    s.add_argument("--config", default=None, help="round config to compare with (default: the one the run saved)")
    s.add_argument("overrides", nargs="*")
    s.set_defaults(handler=_status)


def _setup_logging(workdir: Path) -> None:
    import logging

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    handler = logging.FileHandler(workdir / "logs" / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


def _run(args) -> int:
    from herd.loop.config import load_round_config
    from herd.loop.runner import RoundRunner

    cfg = load_round_config(args.config, args.overrides)
    workdir = Path(args.workdir or Path("runs") / cfg.name)
    _setup_logging(workdir)
    runner = RoundRunner(cfg, workdir, config_source=args.config)
    runner.run()
    print(f"report: {workdir / 'report' / 'report.md'}")
    return 0


def _status(args) -> int:
    from herd.loop.status import status_lines

    workdir = Path(args.workdir)
    if not workdir.is_dir():
        raise FileNotFoundError(f"{workdir}: no such workdir")
    for line in status_lines(workdir, args.config, args.overrides):
        print(line)
    return 0
