"""The SFT stage, top to bottom: data -> model -> TRL SFTTrainer -> atomic output.

``train_sft(cfg)`` is what ``herd sft``, ``python -m herd.sft`` and the round loop call. TRL's
SFTTrainer runs the optimisation (loss normalised over every assistant token of the accumulated
batch, fused LM head, checkpointing, accelerate/FSDP); herd hands it ready ``input_ids`` +
``labels`` (core.chat masks) and, for packed rows, the collator that keeps conversations apart.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

from herd.core.artifacts import hash_config
from herd.core.config import to_dict
from herd.sft.checkpoints import prepare_checkpoints
from herd.sft.config import SFTConfig
from herd.sft.data import build_dataset
from herd.sft.output import publish

log = logging.getLogger(__name__)

#: Fields that change how a run is operated, not what it computes; they may differ on resume.
OPERATIONAL_FIELDS = ("resume", "keep_checkpoints", "save_total_limit", "report_to", "num_proc", "logging_steps")


def run_hash(cfg: SFTConfig) -> str:
    """Hash of everything that determines the weights (checkpoints are only resumed under it)."""
    data = {k: v for k, v in to_dict(cfg).items() if k not in OPERATIONAL_FIELDS}
    return hash_config(data)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def attention_impl(cfg: SFTConfig) -> str:
    """flash_attention_2 where it exists (GPU + flash_attn installed), sdpa otherwise."""
    if cfg.attn_implementation != "auto":
        return cfg.attn_implementation
    if _cuda() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def load_tokenizer_for_sft(cfg: SFTConfig):
    """The model's tokenizer, with the Llama 3 chat template installed when it ships none.

    The output directory must carry a chat template so that generation formats prompts the way
    training did.
    """
    from herd.core.chat import LLAMA3_CHAT_TEMPLATE
    from herd.core.models import load_tokenizer

    tok = load_tokenizer(cfg.model)
    if not getattr(tok, "chat_template", None):
        tok.chat_template = LLAMA3_CHAT_TEMPLATE
    return tok


def load_model(cfg: SFTConfig, attn: str):
    """The base causal LM in the configured dtype; 4-bit NF4 for QLoRA (GPU + bitsandbytes only)."""
    import torch
    from transformers import AutoModelForCausalLM

    from herd.core.models import resolve_dtype

    dtype = resolve_dtype(cfg.dtype)
    kwargs: dict = {"dtype": dtype, "attn_implementation": attn}
    if cfg.lora is not None and cfg.lora.quantize_4bit:
        if not _cuda() or importlib.util.find_spec("bitsandbytes") is None:
            raise ValueError("lora.quantize_4bit (QLoRA) needs a CUDA GPU and the bitsandbytes package")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    model = AutoModelForCausalLM.from_pretrained(cfg.model, **kwargs)
    model.config.use_cache = False  # a KV cache in training disables packed-sequence masking
    return model


def peft_config(cfg: SFTConfig):
    if cfg.lora is None:
        return None
    from peft import LoraConfig

    lo = cfg.lora
    return LoraConfig(
        r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout,
        target_modules=lo.target_modules, task_type="CAUSAL_LM",
    )


def trl_args(cfg: SFTConfig, padding_free: bool):
    """TRL SFTConfig for pre-tokenized data: TRL's own truncation, packing and label building are off."""
    from trl import SFTConfig as TRLConfig

    cuda = _cuda()
    return TRLConfig(
        output_dir=str(cfg.checkpoints),
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.num_epochs,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=list(cfg.report_to) or "none",
        bf16=cuda,  # bf16 autocast on GPU; cfg.dtype decides the dtype of the stored weights
        use_cpu=not cuda,
        gradient_checkpointing=cfg.gradient_checkpointing,
        max_length=None,  # rows are already cut to cfg.max_length by herd (and counted)
        packing=False,  # already packed by herd
        padding_free=padding_free,
        dataset_num_proc=cfg.num_proc,
        ddp_find_unused_parameters=False,
        disable_tqdm=True,
    )


def build_trainer(cfg: SFTConfig, callbacks=None):
    """Everything up to ``trainer.train()``: returns (trainer, tokenizer, data stats)."""
    from transformers import set_seed
    from trl import SFTTrainer

    from herd.sft.collator import PackedRowsCollator

    set_seed(cfg.seed)
    tok = load_tokenizer_for_sft(cfg)
    dataset, stats = build_dataset(tok, cfg)
    attn = attention_impl(cfg)
    # Packed rows go padding-free into varlen flash kernels; elsewhere they stay padded rows.
    padding_free = cfg.packing and attn.startswith("flash")
    collator = PackedRowsCollator(tok.pad_token_id) if cfg.packing and not padding_free else None
    set_seed(cfg.seed)  # LoRA initialisation draws from the global RNG
    trainer = SFTTrainer(
        model=load_model(cfg, attn),
        args=trl_args(cfg, padding_free),
        train_dataset=dataset,
        processing_class=tok,
        data_collator=collator,
        peft_config=peft_config(cfg),
        callbacks=callbacks,
    )
    return trainer, tok, stats


def train_sft(cfg: SFTConfig, callbacks: list | None = None) -> Path:
    """Fine-tune ``cfg.model`` on ``cfg.data``; returns the finished output directory.

    Resumes from the last complete checkpoint of an interrupted run with the same config
    (``cfg.resume``). The output directory appears only when complete: model (LoRA merged
    unless ``lora.merge`` is false), tokenizer with chat template, ``sft_config.yaml`` and
    ``metrics.json``. ``callbacks`` are extra transformers TrainerCallbacks (tests, progress).
    """
    trainer, tok, stats = build_trainer(cfg, callbacks)
    resume_from = prepare_checkpoints(cfg, run_hash(cfg), trainer.accelerator)
    if resume_from:
        log.info("resuming from %s", resume_from)
    result = trainer.train(resume_from_checkpoint=resume_from)
    out = publish(trainer, cfg, tok, stats, result, resumed_from=resume_from)
    if trainer.accelerator.is_main_process and not cfg.keep_checkpoints:
        shutil.rmtree(cfg.checkpoints, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return out
