"""Write the finished SFT model: all or nothing.

Every process takes part in saving (under FSDP the full state dict is gathered collectively) into
a staging directory with a name all ranks agree on; the main process then merges LoRA if asked,
adds tokenizer, config and metrics, and moves the result into place with one rename
(core.artifacts.atomic_dir), so ``output_dir`` exists only once it is complete.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from herd.core.artifacts import atomic_dir, atomic_write_json, atomic_write_text
from herd.core.config import to_dict

CONFIG_NAME = "sft_config.yaml"
METRICS_NAME = "metrics.json"
#: Trainer files that describe the run, not the model.
_NOT_MODEL = ("training_args.bin", "README.md")


def staging_dir(out: Path) -> Path:
    """Hidden ``.name.staging.tmp`` beside the output (core.artifacts.remove_stale_temps clears it)."""
    return out.with_name(f".{out.name}.staging.tmp")


def merge_adapter(base: str, adapter_dir: Path, dtype):
    """Base weights + LoRA adapter -> plain model. The base is reloaded unquantized (QLoRA too)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()


def loss_history(log_history: list[dict]) -> list[dict]:
    keys = ("step", "epoch", "loss", "learning_rate", "grad_norm", "mean_token_accuracy")
    return [{k: e[k] for k in keys if k in e} for e in log_history if "loss" in e]


def run_metrics(trainer, stats, result, resumed_from: str | None) -> dict:
    history = loss_history(trainer.state.log_history)
    return {
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "final_loss": history[-1]["loss"] if history else None,
        "train_loss_mean": result.training_loss,
        "loss_history": history,
        "runtime_s": result.metrics.get("train_runtime"),
        "resumed_from": Path(resumed_from).name if resumed_from else None,
        "num_processes": trainer.accelerator.num_processes,
        "distributed_type": str(trainer.accelerator.distributed_type.value),
        "data": stats.as_dict(),
    }


def _fill(tmp: Path, staged: Path, cfg) -> None:
    if cfg.lora is not None and cfg.lora.merge:
        from herd.core.models import resolve_dtype

        dtype = resolve_dtype("bfloat16" if cfg.lora.quantize_4bit else cfg.dtype)
        merge_adapter(cfg.model, staged, dtype).save_pretrained(tmp, safe_serialization=True)
        return
    for item in staged.iterdir():
        if item.name not in _NOT_MODEL:
            shutil.move(str(item), tmp / item.name)


def publish(trainer, cfg, tokenizer, stats, result, resumed_from: str | None = None) -> Path:
    """Save model + tokenizer + ``sft_config.yaml`` + ``metrics.json`` into ``cfg.output_dir`` atomically."""
    out = Path(cfg.output_dir)
    staged = staging_dir(out)
    acc = trainer.accelerator
    if acc.is_main_process:
        shutil.rmtree(staged, ignore_errors=True)
    acc.wait_for_everyone()
    trainer.save_model(str(staged))  # collective under FSDP; writes on the main process
    if acc.is_main_process:
        with atomic_dir(out) as tmp:
            _fill(tmp, staged, cfg)
            tokenizer.save_pretrained(tmp)
            atomic_write_text(tmp / CONFIG_NAME, yaml.safe_dump(to_dict(cfg), sort_keys=False))
            atomic_write_json(tmp / METRICS_NAME, run_metrics(trainer, stats, result, resumed_from))
        shutil.rmtree(staged, ignore_errors=True)
    acc.wait_for_everyone()
    return out
