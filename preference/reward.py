"""Reward model training: a Bradley-Terry scalar head on preference pairs (Llama 3 §4.1.2).

Reads top to bottom: load pairs -> encode with the reward model's own renderer -> TRL's
RewardTrainer -> held-out pairwise accuracy with the same scorer rejection sampling will use ->
publish atomically. The loss is Llama 3's ``-log σ(r_c - r_r)`` without a margin; Llama 2's
margin loss is a switch (``loss: margin``), reading each pair's ``margin`` (0 when absent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from herd.core.models import DType
from herd.preference.data import PreferenceDataConfig, PreferencePair, load_from_config, split_pairs

log = logging.getLogger(__name__)


@dataclass
class RewardConfig:
    """The reward-model stage (``herd reward --config X.yaml``)."""

    model: str
    """Initial checkpoint: any AutoModelForSequenceClassification dir (Llama, or a small encoder)."""
    output_dir: str
    """Finished model + tokenizer + metrics.json appear here, atomically."""
    data: PreferenceDataConfig
    """Training pairs."""
    eval_data: PreferenceDataConfig | None = None
    """Held-out pairs; when absent, ``eval_fraction`` of the training prompts are held out."""
    eval_fraction: float = 0.1
    """Share of prompts held out for accuracy when ``eval_data`` is not given (0 = none)."""
    loss: Literal["bradley_terry", "margin"] = "bradley_terry"
    """Llama 3's plain Bradley-Terry loss, or Llama 2's loss with the row's margin."""
    learning_rate: float = 1e-5
    """Peak learning rate (AdamW)."""
    lr_scheduler: str = "linear"
    """transformers scheduler name."""
    warmup_steps: float = 0.0
    """Warm-up steps (a value < 1 is read by transformers as a fraction of training)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    epochs: float = 1.0
    """Passes over the training pairs."""
    max_steps: int = -1
    """Stop after this many optimizer steps (-1: run ``epochs``)."""
    batch_size: int = 8
    """Pairs per device per step."""
    grad_accum: int = 1
    """Gradient accumulation steps."""
    max_length: int = 1024
    """Tokens per conversation; longer ones keep their end (the response)."""
    center_rewards_coefficient: float | None = None
    """Optional penalty keeping rewards near zero (Eisenstein et al. 2023); off in Llama 3."""
    gradient_checkpointing: bool = False
    """Trade compute for activation memory."""
    dtype: DType = "auto"
    """Weights dtype ('auto' = bf16 on GPU, fp32 on CPU)."""
    seed: int = 0
    """Seed for initialisation, shuffling and the held-out split: same seed + data = same weights."""
    save_steps: int = 500
    """Checkpoint every N steps (a killed run resumes from the newest)."""
    logging_steps: int = 10
    """Log every N steps."""
    eval_batch_size: int = 32
    """Conversations per scoring batch for the held-out metrics."""


def encode_pairs(pairs: list[PreferencePair], tokenizer, cfg: RewardConfig):
    """A ``datasets.Dataset`` of ``chosen_ids``/``rejected_ids`` (+ ``margin``) for TRL."""
    from datasets import Dataset

    from herd.core.reward_scoring import encode_for_reward

    rows = []
    for p in pairs:
        row = {
            "chosen_ids": encode_for_reward(tokenizer, p.prompt + p.chosen, cfg.max_length),
            "rejected_ids": encode_for_reward(tokenizer, p.prompt + p.rejected, cfg.max_length),
        }
        if cfg.loss == "margin":
            row["margin"] = float(p.margin or 0.0)
        rows.append(row)
    return Dataset.from_list(rows)


def pairwise_metrics(scorer, pairs: list[PreferencePair]) -> dict[str, float]:
    """Held-out accuracy (share of pairs with r_c > r_r strictly) and mean margin r_c - r_r."""
    if not pairs:
        return {}
    chosen = scorer.score([p.prompt + p.chosen for p in pairs])
    rejected = scorer.score([p.prompt + p.rejected for p in pairs])
    diffs = [c - r for c, r in zip(chosen, rejected)]
    return {
        "accuracy": sum(d > 0 for d in diffs) / len(diffs),
        "mean_margin": sum(diffs) / len(diffs),
        "pairs": float(len(diffs)),
    }


def _trainer_args(cfg: RewardConfig):
    import torch
    from trl import RewardConfig as TRLRewardConfig

    from herd.preference.output import work_dir

    bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and torch.cuda.is_available())
    return TRLRewardConfig(
        output_dir=str(work_dir(cfg.output_dir)),
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        gradient_checkpointing=cfg.gradient_checkpointing,
        center_rewards_coefficient=cfg.center_rewards_coefficient,
        max_length=None,  # encode_pairs already truncated, keeping the response
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),  # CPU-only: join the gloo group (see dpo._trl_args)
        seed=cfg.seed,
        data_seed=cfg.seed,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        logging_steps=cfg.logging_steps,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


@dataclass
class RewardRun:
    """A reward trainer ready to train, with the data decisions that went into it."""

    trainer: object
    tokenizer: object
    train_pairs: list[PreferencePair]
    eval_pairs: list[PreferencePair]
    report: object


def build_reward_trainer(cfg: RewardConfig) -> RewardRun:
    """Everything up to ``trainer.train()``: pairs, held-out split, encoding, TRL RewardTrainer."""
    from trl import RewardTrainer

    from herd.core.models import ModelSpec, load_reward_model, load_tokenizer

    pairs, report = load_from_config(cfg.data)
    if cfg.eval_data is not None:
        eval_pairs, _ = load_from_config(cfg.eval_data)
    else:
        pairs, eval_pairs = split_pairs(pairs, cfg.eval_fraction, cfg.seed)
    log.info("reward: %d train pairs, %d held-out pairs (%s)", len(pairs), len(eval_pairs), report)
    tokenizer = load_tokenizer(cfg.model)
    model = load_reward_model(ModelSpec(cfg.model, dtype=cfg.dtype), for_training=True)
    trainer = RewardTrainer(
        model=model,
        args=_trainer_args(cfg),
        train_dataset=encode_pairs(pairs, tokenizer, cfg),
        processing_class=tokenizer,
    )
    return RewardRun(trainer, tokenizer, pairs, eval_pairs, report)


def train_reward(cfg: RewardConfig) -> Path:
    """Train a reward model; returns the finished output dir (model, tokenizer, metrics.json)."""
    from herd.core.reward_scoring import RewardModelScorer
    from herd.preference.output import check_world, finish, last_checkpoint

    run = build_reward_trainer(cfg)
    check_world(run.trainer.accelerator)
    trainer, tokenizer, pairs, eval_pairs, report = run.trainer, run.tokenizer, run.train_pairs, run.eval_pairs, run.report
    result = trainer.train(resume_from_checkpoint=last_checkpoint(cfg.output_dir))
    scorer = RewardModelScorer(
        cfg.model, batch_size=cfg.eval_batch_size, max_length=cfg.max_length,
        model=trainer.model, tokenizer=tokenizer,
    )
    metrics = {
        "train_loss": float(result.training_loss),
        "train_pairs": len(pairs),
        "skipped_rows": report.skipped,
        "similar_filtered": report.similar_filtered,
        **{f"eval_{k}": v for k, v in pairwise_metrics(scorer, eval_pairs).items()},
    }
    log.info("reward: %s", metrics)

    return finish(trainer, cfg, metrics)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m herd.preference.reward`` / ``accelerate launch -m ...``."""
    from herd.preference.output import stage_main

    return stage_main("herd.preference.reward", "reward-model stage", RewardConfig, train_reward, argv)


if __name__ == "__main__":
    raise SystemExit(main())
