"""Load and save policy, reference and reward models (HF dirs or hub ids), merge LoRA adapters.

One place decides dtype, attention implementation and device so that every stage loads a
checkpoint the same way: a reference model loaded in another dtype than the policy would make
DPO's log-ratio start away from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

DType = Literal["auto", "float32", "bfloat16", "float16"]
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ModelSpec:
    """Where and how to load a model."""

    path: str
    """Local directory or hub id (hub ids need network; tests and the demo use local dirs)."""
    dtype: DType = "auto"
    """'auto' = bfloat16 on CUDA, float32 on CPU (CPU bf16 matmuls are slow and imprecise)."""
    attn_implementation: str | None = None
    """'sdpa', 'eager', 'flash_attention_2'; None lets transformers choose."""
    device: str | None = None
    """'cpu', 'cuda', 'cuda:1'; None = CUDA when available. Ignored under accelerate/FSDP."""


def resolve_dtype(dtype: DType) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return _DTYPES[dtype]


def resolve_device(device: str | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _check_exists(path: str, marker: tuple[str, ...] = ("config.json",), what: str = "model") -> None:
    """Fail early and clearly on a local path that is not a checkpoint (instead of a hub lookup)."""
    p = Path(path)
    looks_local = path.startswith((".", "/", "~")) or p.exists()
    if looks_local and not any((p / m).exists() for m in marker):
        raise FileNotFoundError(f"{path}: not a Hugging Face {what} directory (no {' or '.join(marker)})")


def load_tokenizer(path: str):
    """The checkpoint's tokenizer; pad falls back to Llama 3's ``<|finetune_right_pad_id|>``."""
    from transformers import AutoTokenizer

    _check_exists(path, ("tokenizer_config.json", "tokenizer.json"), "model")
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        pad = "<|finetune_right_pad_id|>"
        tok.pad_token = pad if pad in tok.get_vocab() else tok.eos_token
    return tok


def _is_adapter(path: str) -> bool:
    return (Path(path) / "adapter_config.json").exists()


def load_causal_lm(spec: ModelSpec | str, for_training: bool = False):
    """A causal LM (policy or reference). A LoRA adapter directory loads onto its base."""
    spec = ModelSpec(spec) if isinstance(spec, str) else spec
    _check_exists(spec.path, ("config.json", "adapter_config.json"))
    kwargs = {"dtype": resolve_dtype(spec.dtype)}
    if spec.attn_implementation:
        kwargs["attn_implementation"] = spec.attn_implementation
    if _is_adapter(spec.path):
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(spec.path, is_trainable=for_training, **kwargs)
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(spec.path, **kwargs)
    if not for_training:
        model.eval()
        model.to(resolve_device(spec.device))
    return model


def load_reward_model(spec: ModelSpec | str, for_training: bool = False):
    """A scalar-head sequence classifier (Llama with a score head, or an encoder)."""
    from transformers import AutoModelForSequenceClassification

    spec = ModelSpec(spec) if isinstance(spec, str) else spec
    _check_exists(spec.path)
    kwargs = {"dtype": resolve_dtype(spec.dtype), "num_labels": 1}
    if spec.attn_implementation:
        kwargs["attn_implementation"] = spec.attn_implementation
    model = AutoModelForSequenceClassification.from_pretrained(spec.path, **kwargs)
    if model.config.pad_token_id is None:
        tok = load_tokenizer(spec.path)
        model.config.pad_token_id = tok.pad_token_id
    if not for_training:
        model.eval()
        model.to(resolve_device(spec.device))
    return model


def merge_lora(model):
    """Fold LoRA weights into the base weights and return a plain transformers model."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model


def save_model(model, tokenizer, out_dir: Path | str, merge_adapters: bool = True) -> Path:
    """Save a model + tokenizer (with its chat template) as an ordinary HF directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if merge_adapters:
        model = merge_lora(model)
    model.save_pretrained(out, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out
