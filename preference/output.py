"""Where a preference stage writes while it runs, how it resumes, and how it publishes.

A stage trains inside a hidden work directory next to its output (``.<name>.work``) that holds
the Trainer's checkpoints; a rerun after a kill resumes from the newest one. The output
directory itself appears only when training is over, in one atomic rename, so the round runner
never mistakes a half-written model for a finished one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

from herd.core.artifacts import atomic_dir, atomic_write_json


def work_dir(output_dir: Path | str) -> Path:
    out = Path(output_dir)
    return out.parent / f".{out.name}.work"


def last_checkpoint(output_dir: Path | str) -> str | None:
    """The newest complete Trainer checkpoint of an interrupted run, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    wd = work_dir(output_dir)
    return get_last_checkpoint(str(wd)) if wd.is_dir() else None


def publish(
    output_dir: Path | str,
    save: Callable[[Path], None],
    metrics: dict[str, Any],
    config: dict[str, Any],
) -> Path:
    """Write model (via ``save``), ``metrics.json`` and ``herd_config.json`` atomically, then
    remove the work directory."""
    out = Path(output_dir)
    with atomic_dir(out) as tmp:
        save(tmp)
        atomic_write_json(tmp / "metrics.json", metrics)
        atomic_write_json(tmp / "herd_config.json", config)
    shutil.rmtree(work_dir(out), ignore_errors=True)
    return out
