"""Fine-tune a causal LM into a Llama-Guard-format classifier (``herd safety train``).

Data: labelled conversations in llama-cookbook's ``TrainingExample`` shape (prompt, response,
label, violated_category_codes). Each becomes a prompt/completion pair: the guard prompt under the
policy, and the verdict the guard should emit (``"\\n\\n" + "unsafe\\nS1,S10" + <|eot_id|>``, the
shape real Llama Guard 3 outputs). llama-cookbook's two augmentations (its
``finetuning_data_formatter``'s AugmentationConfigs) are applied per example:

* **drop non-violated categories**: a random non-empty subset of the categories the example does
  not violate is left out of the prompt; the label stays;
* **drop violated categories**: every violated category (and some others) is left out; the label
  becomes ``safe`` — the guard learns to judge against the listed policy, not a memorised one.

Dropped categories are *excluded* (the rest keep their codes, as at inference), which differs from
the cookbook's renumbering and matches how herd renders excluded categories.

Loss is on the completion only: TRL's SFTTrainer with a prompt/completion dataset and
``completion_only_loss=True`` masks the prompt tokens (labels -100).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from herd.safety.data import LabelledExample
from herd.safety.rendering import GUARD_CHAT_TEMPLATE, Form, render_guard_prompt
from herd.safety.taxonomy import Policy
from herd.safety.verdicts import format_verdict

EOT = "<|eot_id|>"


@dataclass
class GuardTrainConfig:
    """``herd safety train`` settings (YAML keys = field names)."""

    base_model: str = ""
    """Causal LM directory to fine-tune (a Llama-3-format tokenizer is expected)."""
    data: str = ""
    """Labelled JSONL in llama-cookbook's TrainingExample shape."""
    output_dir: str = ""
    """Where the guard checkpoint is written (atomically: a killed run leaves no partial dir)."""
    split: str | None = None
    """Use only rows whose ``split`` field equals this (e.g. 'train'); None = all rows."""
    policy: str | None = None
    """Policy file (YAML/JSON); None = Llama Guard 3 8B's S1–S14."""
    form: str = "builtin"
    """Prompt form to train on: 'builtin' (FORMATS.md) or 'cookbook'."""
    augment: bool = True
    """Add the two llama-cookbook augmentations for every example."""
    augment_drop_probability: float = 0.5
    """Chance that each non-violated category is dropped in an augmented copy."""
    epochs: float = 1.0
    learning_rate: float = 1e-5
    """Default is the Llama 3 SFT learning rate; tiny models from scratch need ~1e-3."""
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_length: int = 2048
    """Guard prompts are ~300 Llama 3 tokens for one short turn; long conversations need more."""
    seed: int = 0
    save_guard_template: bool = True
    """Install herd's guard chat template in the saved tokenizer, so ``form='auto'`` renders
    the trained form (like a real Llama Guard checkpoint's own template)."""
    extra_args: dict = field(default_factory=dict)
    """Passed to trl.SFTConfig unchanged (e.g. bf16, gradient_checkpointing, lr_scheduler_type)."""


def completion_text(unsafe_codes: Sequence[str], prompt: str) -> str:
    """What the guard should generate: the whitespace prefix, the verdict and ``<|eot_id|>``."""
    prefix = "" if prompt[-1:].isspace() else "\n\n"
    return prefix + format_verdict(unsafe_codes) + EOT


def _pair(ex: LabelledExample, policy: Policy, form: Form) -> dict:
    prompt = render_guard_prompt(ex.conversation(), policy, form)
    codes = [c for c in ex.violated_category_codes if c in policy.active_codes]
    return {"prompt": prompt, "completion": completion_text(codes, prompt)}


def training_pairs(
    examples: Sequence[LabelledExample],
    policy: Policy | None = None,
    form: Form = "builtin",
    augment: bool = True,
    drop_probability: float = 0.5,
    seed: int = 0,
) -> list[dict]:
    """Prompt/completion rows: each example, plus its augmented copies when ``augment``."""
    policy = policy or Policy.llama_guard_3_8b()
    rng = random.Random(seed)
    rows = []
    for ex in examples:
        unknown = set(ex.violated_category_codes) - set(policy.codes)
        if unknown:
            raise ValueError(f"example {ex.prompt[:40]!r} violates {sorted(unknown)}, which the policy does not have")
        rows.append(_pair(ex, policy, form))
        if not augment:
            continue
        others = [c for c in policy.active_codes if c not in ex.violated_category_codes]
        if ex.unsafe:
            # Keep at least one non-violated category so the policy is never empty.
            dropped = [c for c in others if rng.random() < drop_probability]
            if len(dropped) == len(others):
                dropped = dropped[1:]
            rows.append(_pair(ex, policy.exclude(ex.violated_category_codes + dropped), form))
        dropped = [c for c in others if rng.random() < drop_probability] or others[:1]
        if len(dropped) == len(policy.active_codes):
            dropped = dropped[1:]
        if dropped:
            rows.append(_pair(ex, policy.exclude(dropped), form))
    return rows


def build_trainer(model, tokenizer, pairs: list[dict], cfg: GuardTrainConfig, output_dir: str):
    """A TRL SFTTrainer over the prompt/completion pairs (loss on the completion only)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=output_dir,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        completion_only_loss=True,
        seed=cfg.seed,
        report_to="none",
        save_strategy="no",
        logging_steps=10,
        use_cpu=not _cuda(),
        **cfg.extra_args,
    )
    return SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def train_guard(cfg: GuardTrainConfig, examples: Sequence[LabelledExample] | None = None) -> Path:
    """Fine-tune ``cfg.base_model`` and write the guard to ``cfg.output_dir``; returns that path."""
    from herd.core.artifacts import atomic_dir
    from herd.core.models import load_causal_lm, load_tokenizer, save_model
    from herd.safety.data import read_labelled

    if examples is None:
        examples = read_labelled(cfg.data, cfg.split)
    if not examples:
        raise ValueError(f"{cfg.data}: no labelled rows" + (f" in split {cfg.split!r}" if cfg.split else ""))
    policy = Policy.from_file(cfg.policy) if cfg.policy else Policy.llama_guard_3_8b()
    pairs = training_pairs(examples, policy, cfg.form, cfg.augment, cfg.augment_drop_probability, cfg.seed)
    tokenizer = load_tokenizer(cfg.base_model)
    model = load_causal_lm(cfg.base_model, for_training=True)
    with atomic_dir(cfg.output_dir) as tmp:
        trainer = build_trainer(model, tokenizer, pairs, cfg, str(tmp / "_trainer"))
        trainer.train()
        import shutil

        shutil.rmtree(tmp / "_trainer", ignore_errors=True)
        if cfg.save_guard_template:
            tokenizer.chat_template = GUARD_CHAT_TEMPLATE
        save_model(trainer.model, tokenizer, tmp)
    return Path(cfg.output_dir)
