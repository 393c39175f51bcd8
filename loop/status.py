"""What ``herd status`` prints: per round, each stage's state and its key metrics.

With the round config (given, or the copy the run saved as ``config.yaml``), the runner is replayed
in dry-run mode, so "stale" means exactly "a rerun would redo this stage" — its config or one of its
inputs changed, or a stage before it will rerun. Without one, the recorded states are shown.
"""

from __future__ import annotations

import json
from pathlib import Path

from herd.loop.stages import StageRunner, StageState

KEY_METRICS = ("verifier_accuracy", "reward_mean", "violation_rate", "false_refusal_rate", "kept", "pairs",
               "steps", "final_loss", "accuracy")


def _recorded(workdir: Path) -> list[StageState]:
    runner = StageRunner(workdir)
    keys = {p.stem for p in (workdir / "manifests").glob("*.json") if not p.stem.endswith(".attempt")}
    keys |= {p.stem for p in (workdir / "status").glob("*.json")}
    return [runner.state(k) for k in sorted(keys, key=_order)]


def _order(key: str):
    head = key.split(".")[0]
    if head.startswith("round"):
        return (0, int(head[5:] or 0), key)
    return (1, 0, key)


def planned(workdir: Path, config: str, overrides: list[str] | None = None) -> list[StageState]:
    from herd.loop.config import load_round_config
    from herd.loop.runner import RoundRunner

    cfg = load_round_config(config, overrides or [])
    runner = RoundRunner(cfg, workdir, config_source=config, dry_run=True)
    try:
        runner.run()
    except (FileNotFoundError, ValueError, RuntimeError, KeyError):
        pass  # planning stops where upstream outputs do not exist yet; what is left is pending
    seen = {s.key for s in runner.stages.plan}
    rest = [s for s in _recorded(workdir) if s.key not in seen]
    return runner.stages.plan + [StageState(s.key, "pending" if s.state != "failed" else "failed", s.manifest, s.error) for s in rest]


def status_lines(workdir: Path, config: str | None = None, overrides: list[str] | None = None) -> list[str]:
    saved = workdir / "config.yaml"
    source = config or (str(saved) if saved.exists() else None)
    states = planned(workdir, source, overrides) if source else _recorded(workdir)
    lines = [f"{'stage':<24} {'state':<12} metrics"]
    for s in states:
        metrics = s.manifest.metrics if s.manifest else {}
        shown = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items() if k in KEY_METRICS
        )
        extra = f"  error: {s.error}" if s.error else ""
        lines.append(f"{s.key:<24} {s.state:<12} {shown}{extra}")
    return lines
