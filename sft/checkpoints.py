"""Where an interrupted SFT run picks up again.

Checkpoints live beside the output (``<output_dir>.checkpoints``) with a marker naming the hash
of the config that made them. A rerun with the same config resumes from the newest *complete*
checkpoint (transformers writes ``trainer_state.json`` last, so a checkpoint cut off by a kill has
none and is skipped); a rerun with a different config refuses to mix the two runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from herd.core.artifacts import atomic_write_json, last_complete_checkpoint

MARKER = "herd_run.json"
def _marker_hash(directory: Path) -> str | None:
    try:
        return json.loads((directory / MARKER).read_text())["run_hash"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def prepare_checkpoints(cfg, run_hash: str, accelerator) -> str | None:
    """Validate or reset the checkpoint directory; the checkpoint to resume from, or None.

    Every process checks (so all of them raise together); only the main process writes.
    """
    ckpt = cfg.checkpoints
    last = last_complete_checkpoint(ckpt) if cfg.resume else None
    if last is not None and _marker_hash(ckpt) != run_hash:
        raise ValueError(
            f"{ckpt}: checkpoints of a run with a different config; delete the directory or set resume: false"
        )
    if accelerator.is_main_process:
        if not cfg.resume or last is None:
            shutil.rmtree(ckpt, ignore_errors=True)
        atomic_write_json(ckpt / MARKER, {"run_hash": run_hash})
    accelerator.wait_for_everyone()
    return str(last) if last is not None else None
