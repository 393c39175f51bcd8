"""Where a preference stage writes while it runs, how it resumes, and how it publishes.

A stage trains inside a hidden work directory next to its output (``.<name>.work``) that holds
the Trainer's checkpoints; a rerun after a kill resumes from the newest one. The output
directory itself appears only when training is over, in one atomic rename, so the round runner
never mistakes a half-written model for a finished one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

from herd.core.artifacts import atomic_dir, atomic_write_json, last_complete_checkpoint


def work_dir(output_dir: Path | str) -> Path:
    out = Path(output_dir)
    return out.parent / f".{out.name}.work"


def last_checkpoint(output_dir: Path | str) -> str | None:
    """The newest complete Trainer checkpoint of an interrupted run, or None (a checkpoint cut
    off mid-write by a kill is skipped)."""
    last = last_complete_checkpoint(work_dir(output_dir))
    return str(last) if last is not None else None


def check_world(accelerator) -> None:
    """Refuse to train when the launcher started more processes than the Trainer joined.

    Each process that is not part of the Trainer's process group believes it is the only one,
    so every one of them writes ``checkpoint-N``, stages ``final``, publishes the output and
    deletes the work directory, all at the same paths: a save fails with FileNotFoundError or
    a published model lacks files, depending on the interleaving.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if launched > 1 and accelerator.num_processes != launched:
        raise RuntimeError(
            f"launched as {launched} processes (WORLD_SIZE) but the trainer runs as "
            f"{accelerator.num_processes} ({accelerator.distributed_type}); every process would "
            "write the same checkpoints and output"
        )


def save_final(trainer, output_dir: Path | str, merge_adapter: bool = False) -> Path:
    """Save the trained model + tokenizer to ``<work>/final`` on every process (collective).

    ``Trainer.save_model`` gathers a sharded (FSDP) model before the main process writes it; a
    LoRA model is merged into its base first, so the output is an ordinary HF directory.
    """
    staging = work_dir(output_dir) / "final"
    if merge_adapter:
        if trainer.accelerator.is_main_process:
            from herd.core.models import merge_lora

            model = merge_lora(trainer.accelerator.unwrap_model(trainer.model))
            model.save_pretrained(staging, safe_serialization=True)
            trainer.processing_class.save_pretrained(staging)
    else:
        trainer.save_model(str(staging))
    trainer.accelerator.wait_for_everyone()
    return staging


def copy_into(staging: Path) -> Callable[[Path], None]:
    """A ``publish`` saver that copies a staged model directory (minus Trainer's args pickle)."""

    def save(d: Path) -> None:
        shutil.copytree(staging, d, dirs_exist_ok=True, ignore=shutil.ignore_patterns("training_args.bin"))

    return save


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


def finish(trainer, cfg, metrics: dict[str, Any], merge_adapter: bool = False) -> Path:
    """The common tail of both preference stages: save on every process (collective), publish
    model + metrics (with the number of training processes) + config atomically from the main
    process, wait for the others."""
    from herd.core.config import to_dict

    staging = save_final(trainer, cfg.output_dir, merge_adapter=merge_adapter)
    out = Path(cfg.output_dir)
    metrics = {**metrics, "num_processes": trainer.accelerator.num_processes}
    if trainer.accelerator.is_main_process:
        publish(out, copy_into(staging), metrics, to_dict(cfg))
    trainer.accelerator.wait_for_everyone()
    return out


def stage_main(prog: str, description: str, cfg_cls, train, argv: list[str] | None = None) -> int:
    """``python -m herd.preference.<stage> --config X.yaml [overrides]`` (also under accelerate)."""
    import argparse
    import logging

    from herd.core.config import load_config

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help=f"stage YAML ({cfg_cls.__name__})")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(train(load_config(cfg_cls, args.config, args.overrides)))
    return 0
