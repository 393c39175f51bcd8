"""DPO with the Llama 3 recipe, on TRL's DPOTrainer (Llama 3 §4.1.4; Rafailov et al. 2023).

Defaults follow the paper: β = 0.1, learning rate 1e-5, an NLL term on the chosen response with
weight 0.2 (TRL 1.16: ``loss_type=["sigmoid", "sft"]``, ``loss_weights=[1, 0.2]``), and header /
termination tokens masked out of both responses' log-probs (``dpo_data.MaskedPreferenceCollator``).
Each is a switch. The reference model is the starting (SFT) model, another checkpoint (e.g. the
previous round's policy), or, with LoRA, the adapter-disabled base; its log-probs can be
precomputed once, or taken from the sampler's records when the sampler is the reference.

Run: ``herd dpo --config X.yaml [key=value ...]`` or
``accelerate launch --config_file recipes/accelerate/<x>.yaml -m herd.preference.dpo --config X.yaml``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from herd.core.models import DType
from herd.preference.data import PreferenceDataConfig

log = logging.getLogger(__name__)

ReferenceKind = Literal["initial", "path", "lora_base"]


@dataclass
class LoraSettings:
    """LoRA adapter (peft); with it the reference is the base model with the adapter disabled."""

    r: int = 16
    """Adapter rank."""
    alpha: int = 32
    """Scaling numerator (scale = alpha / r)."""
    dropout: float = 0.0
    """Adapter dropout (0 keeps DPO's policy and reference passes comparable)."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    """Linear layers that get adapters (never lm_head: TRL reads its weight directly)."""


@dataclass
class DPOStageConfig:
    """The DPO stage (``herd dpo --config X.yaml``)."""

    model: str
    """Starting policy (normally this round's SFT model)."""
    output_dir: str
    """Finished model + tokenizer + metrics.json appear here, atomically (LoRA is merged)."""
    data: PreferenceDataConfig
    """Preference pairs (rejection sampling's output, or any preference JSONL)."""
    reference: ReferenceKind = "initial"
    """'initial': a frozen copy of ``model``; 'path': ``reference_path`` (rolling: last round's
    policy); 'lora_base': the base with the adapter disabled (needs ``lora``)."""
    reference_path: str | None = None
    """Reference checkpoint for ``reference: path``."""
    precompute_ref_log_probs: bool = False
    """Compute reference log-probs once before training and drop the reference model."""
    reuse_sampler_logprobs: bool = True
    """When pairs record the sampler's token log-probs and the sampler is the reference model,
    use them as reference log-probs (no reference forward pass at all)."""
    loss: Literal["sigmoid", "ipo"] = "sigmoid"
    """Preference term: DPO's sigmoid loss (Rafailov et al. eq. 7) or IPO."""
    beta: float = 0.1
    """KL strength β (Llama 3: 0.1)."""
    nll_weight: float = 0.2
    """Weight of the NLL term on chosen responses (Llama 3: 0.2; 0 disables it)."""
    mask_formatting_tokens: bool = True
    """Mask header and termination tokens out of chosen and rejected log-probs (Llama 3)."""
    learning_rate: float = 1e-5
    """Peak learning rate (Llama 3: 1e-5)."""
    lr_scheduler: str = "linear"
    """transformers scheduler name."""
    warmup_steps: float = 0.0
    """Warm-up steps (< 1: fraction of training)."""
    epochs: float = 1.0
    """Passes over the pairs."""
    max_steps: int = -1
    """Stop after this many optimizer steps (-1: run ``epochs``)."""
    batch_size: int = 8
    """Pairs per device per step."""
    grad_accum: int = 1
    """Gradient accumulation steps."""
    max_length: int = 1024
    """Tokens per prompt + response; longer sequences are truncated (``truncation_mode``)."""
    truncation_mode: Literal["keep_start", "keep_end"] = "keep_start"
    """Which end of an over-long sequence survives."""
    group_by_length: bool = True
    """Batch pairs of similar length together (less padding, same data)."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass (TRL's default; off is faster, uses more memory)."""
    lora: LoraSettings | None = None
    """Train a LoRA adapter instead of all weights."""
    dtype: DType = "auto"
    """Weights dtype ('auto' = bf16 on GPU, fp32 on CPU)."""
    attn_implementation: str | None = None
    """'sdpa', 'flash_attention_2', ...; None lets transformers choose."""
    seed: int = 0
    """Seed for shuffling and adapter init: same seed + data = same weights."""
    save_steps: int = 500
    """Checkpoint every N steps (a killed run resumes from the newest)."""
    logging_steps: int = 10
    """Log every N steps."""

    def __post_init__(self) -> None:
        if self.reference == "path" and not self.reference_path:
            raise ValueError("reference: path needs reference_path")
        if self.reference == "lora_base" and self.lora is None:
            raise ValueError("reference: lora_base needs a lora section")
        if self.reference != "path" and self.reference_path:
            raise ValueError(f"reference_path is only used with reference: path (got {self.reference!r})")

    @property
    def reference_model_path(self) -> str:
        return self.reference_path if self.reference == "path" else self.model  # type: ignore[return-value]


def _trl_args(cfg: DPOStageConfig, precompute: bool):
    import torch
    from trl import DPOConfig

    from herd.preference.output import work_dir

    bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and torch.cuda.is_available())
    loss_type, weights = [cfg.loss], [1.0]
    if cfg.nll_weight:
        loss_type.append("sft")
        weights.append(cfg.nll_weight)
    return DPOConfig(
        output_dir=str(work_dir(cfg.output_dir)),
        beta=cfg.beta,
        loss_type=loss_type,
        loss_weights=weights,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_length,
        truncation_mode=cfg.truncation_mode,
        gradient_checkpointing=cfg.gradient_checkpointing,
        precompute_ref_log_probs=precompute,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        remove_unused_columns=False,  # the collator needs the loss-mask columns
        bf16=bf16,
        # Without a GPU, transformers needs use_cpu to join accelerate's process group (gloo);
        # otherwise every launched process trains alone as "rank 0" and they all write the same
        # checkpoints and output (output.check_world refuses that).
        use_cpu=not torch.cuda.is_available(),
        seed=cfg.seed,
        data_seed=cfg.seed,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        logging_steps=cfg.logging_steps,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def build_trainer(cfg: DPOStageConfig):
    """Everything up to ``trainer.train()``: data, models, TRL trainer. Returns (trainer, report)."""
    from datasets import Dataset

    from herd.core.models import ModelSpec, load_causal_lm, load_tokenizer
    from herd.preference.data import load_from_config
    from herd.preference.dpo_data import MaskedPreferenceCollator, build_dpo_rows
    from herd.preference.reference import sampler_is_reference
    from herd.preference.trainer import HerdDPOTrainer

    pairs, load_report = load_from_config(cfg.data)
    tokenizer = load_tokenizer(cfg.model)
    reuse = cfg.reuse_sampler_logprobs and sampler_is_reference(pairs, cfg.reference_model_path)
    rows, report = build_dpo_rows(
        pairs, tokenizer, cfg.mask_formatting_tokens, cfg.data.bad_rows, reuse, cfg.max_length
    )
    log.info("dpo: %d pairs; reference log-probs from the sampler: %s %s",
             report.pairs, report.reused_ref_logps, report.reuse_note)
    spec = ModelSpec(cfg.model, dtype=cfg.dtype, attn_implementation=cfg.attn_implementation)
    model = load_causal_lm(spec, for_training=True)
    precompute = cfg.precompute_ref_log_probs or report.reused_ref_logps
    ref_model = None
    if cfg.reference == "path" and not report.reused_ref_logps:
        ref_spec = ModelSpec(cfg.reference_path, dtype=cfg.dtype, attn_implementation=cfg.attn_implementation)
        ref_model = load_causal_lm(ref_spec)
    args = _trl_args(cfg, precompute)
    collator = MaskedPreferenceCollator(
        pad_token_id=tokenizer.pad_token_id, max_length=cfg.max_length, truncation_mode=cfg.truncation_mode
    )
    trainer = HerdDPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        data_collator=collator,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=_peft_config(cfg),
    )
    report.skipped.update({f"load: {k}": v for k, v in load_report.skipped.items()})
    return trainer, report


def _peft_config(cfg: DPOStageConfig):
    if cfg.lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM",
    )


def train_dpo(cfg: DPOStageConfig) -> Path:
    """Run DPO; returns the finished output dir (merged HF model, tokenizer, metrics.json)."""
    from herd.preference.output import check_world, finish, last_checkpoint

    trainer, report = build_trainer(cfg)
    check_world(trainer.accelerator)
    result = trainer.train(resume_from_checkpoint=last_checkpoint(cfg.output_dir))
    logs = [h for h in trainer.state.log_history if "rewards/margins" in h]
    metrics = {
        "train_loss": float(result.training_loss),
        "steps": trainer.state.global_step,
        "pairs": report.pairs,
        "skipped": report.skipped,
        "reused_sampler_ref_logps": report.reused_ref_logps,
        "reuse_note": report.reuse_note,
        "last_log": logs[-1] if logs else {},
    }
    return finish(trainer, cfg, metrics, merge_adapter=cfg.lora is not None)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m herd.preference.dpo`` / ``accelerate launch -m ...``."""
    from herd.preference.output import stage_main

    return stage_main("herd.preference.dpo", "DPO stage (Llama 3 recipe)", DPOStageConfig, train_dpo, argv)


if __name__ == "__main__":
    sys.exit(main())
