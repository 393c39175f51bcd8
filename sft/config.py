"""The SFT stage's configuration: one typed dataclass per YAML file (recipes/sft/*.yaml).

Defaults follow the Llama 3 recipe (Llama Team, "The Llama 3 Herd of Models", 2024, §4.1.3):
learning rate 1e-5 and the loss on assistant tokens only. Hardware (number of processes, FSDP,
mixed precision) is not here: it lives in the accelerate launch config (recipes/accelerate/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from herd.core.chat import TrainOn
from herd.core.chat_data import BadRows, DataFormat


@dataclass
class LoraSettings:
    """Low-rank adapters (peft). Present in the config = LoRA training; absent = full fine-tuning."""

    r: int = 16
    """Adapter rank."""
    alpha: int = 32
    """Scaling numerator (the update is scaled by alpha / r)."""
    dropout: float = 0.0
    """Dropout on the adapter input; 0 keeps runs bit-reproducible."""
    target_modules: list[str] | str = "all-linear"
    """Module names to adapt, or 'all-linear' (every linear layer but the LM head)."""
    merge: bool = True
    """Fold the adapters into the base weights in the output (a plain HF model); False saves the adapter dir."""
    quantize_4bit: bool = False
    """QLoRA: load the frozen base in 4-bit NF4 (needs bitsandbytes and a CUDA GPU)."""

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ValueError("lora.r and lora.alpha must be positive")


@dataclass
class SFTConfig:
    """One SFT run: model, data, optimisation, output."""

    model: str
    """Base model: a local HF directory (or a hub id on machines with network)."""
    data: list[str]
    """Training data: JSONL(.gz) files or saved `datasets` directories with a `messages` column."""
    output_dir: str
    """Where the finished model goes (written atomically: it exists only once complete)."""
    data_format: DataFormat = "messages"
    """'messages' (rows carry a `messages` list) or 'hh-rlhf' (train on each row's `chosen` dialogue)."""
    max_steps: int = -1
    """Optimizer steps; -1 = run num_epochs."""
    num_epochs: float = 1.0
    """Passes over the data when max_steps is -1."""
    learning_rate: float = 1e-5
    """Peak learning rate (Llama 3: 1e-5)."""
    lr_scheduler: str = "cosine"
    """transformers scheduler name ('cosine', 'linear', 'constant', ...)."""
    warmup_ratio: float = 0.0
    """Fraction of the steps spent warming the learning rate up linearly."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping (0 disables)."""
    per_device_batch_size: int = 8
    """Rows per device per micro-batch (packed rows when packing is on)."""
    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step; the loss is normalised over all their assistant tokens."""
    max_length: int = 2048
    """Token budget of one row (and of one packed row)."""
    packing: bool = True
    """Best-fit-decreasing packing of whole conversations into rows of max_length, attention kept per conversation."""
    train_on: TrainOn = "all"
    """Loss on 'all' assistant turns or only the 'last' one."""
    bad_rows: BadRows = "fail"
    """Malformed rows: 'fail' (list them all and stop) or 'skip' (drop and count them)."""
    overlong: Literal["truncate", "drop"] = "truncate"
    """Rows longer than max_length: cut at max_length, or drop them; counted in metrics either way."""
    lora: LoraSettings | None = None
    """LoRA settings; None = full fine-tuning."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Stored weights: 'auto' = bfloat16 on GPU (least memory), float32 on CPU. GPUs always compute
    under bf16 autocast, so 'float32' there means fp32 master weights with bf16 matmuls."""
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    """'auto' = flash_attention_2 when installed on a GPU (packing then runs padding-free), else sdpa."""
    gradient_checkpointing: bool = False
    """Trade compute for activation memory (large models / long rows)."""
    seed: int = 0
    """Seeds initialisation of adapters, data order and dropout: same seed + data -> same weights."""
    save_steps: int = 200
    """Checkpoint every this many steps (resume point after a kill)."""
    save_total_limit: int = 2
    """Checkpoints kept on disk."""
    resume: bool = True
    """Continue from the last checkpoint of an interrupted run with the same config."""
    keep_checkpoints: bool = False
    """Keep the checkpoint directory after a successful run (it is deleted by default)."""
    checkpoint_dir: str | None = None
    """Where checkpoints go; default '<output_dir>.checkpoints' beside the output."""
    logging_steps: int = 1
    """Record loss / lr / grad-norm every this many steps (into metrics.json)."""
    report_to: list[str] = field(default_factory=list)
    """Experiment trackers for transformers ('wandb', 'tensorboard'); empty = none."""
    num_proc: int | None = None
    """Worker processes for tokenizing the data (None = in-process; worth it from ~100k rows)."""

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("data: at least one data path is required")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError("max_steps must be positive, or -1 to train num_epochs")
        if self.max_steps == -1 and self.num_epochs <= 0:
            raise ValueError("num_epochs must be positive when max_steps is -1")
        if self.per_device_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("per_device_batch_size and gradient_accumulation_steps must be >= 1")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.max_length < 8:
            raise ValueError("max_length must be at least 8 tokens")
        if self.save_steps < 1 or self.logging_steps < 1:
            raise ValueError("save_steps and logging_steps must be >= 1")

    @property
    def checkpoints(self) -> Path:
        """The checkpoint directory (resolved default)."""
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir)
        out = Path(self.output_dir)
        return out.with_name(out.name + ".checkpoints")
