"""Tiny Llama-3-format tokenizer and models, built locally with no network.

Tests and the demo need real Hugging Face checkpoints that vLLM and transformers both load, but
the Hub is unreachable at run time. This module trains a byte-level BPE (Llama 3's pre-tokenizer
regex) on text the project ships, adds every Llama 3 special token under its real name in Llama
3.1's order, installs the Llama 3 chat template, and initialises small ``LlamaForCausalLM`` /
``LlamaForSequenceClassification`` models (GQA, rope_theta 500000, head_dim 64 — vLLM's CPU
attention rejects 16). Same seed, same bytes: the demo's provenance hashes rely on it.
"""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from herd.core.chat import LLAMA3_CHAT_TEMPLATE

#: Llama 3's pre-tokenizer split pattern (tiktoken cl100k-style, numbers in groups of 1–3 digits).
LLAMA3_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

NAMED_SPECIALS = {
    0: "<|begin_of_text|>",
    1: "<|end_of_text|>",
    4: "<|finetune_right_pad_id|>",
    6: "<|start_header_id|>",
    7: "<|end_header_id|>",
    8: "<|eom_id|>",
    9: "<|eot_id|>",
    10: "<|python_tag|>",
}
NUM_SPECIALS = 256


def llama3_special_tokens() -> list[str]:
    """The 256 Llama 3.1 special tokens in id order (reserved slots keep their real names)."""
    tokens, reserved = [], 0
    for i in range(NUM_SPECIALS):
        if i in NAMED_SPECIALS:
            tokens.append(NAMED_SPECIALS[i])
        else:
            tokens.append(f"<|reserved_special_token_{reserved}|>")
            reserved += 1
    return tokens


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def corpus_lines(data_dir: Path | None = None) -> list[str]:
    """Training text for the BPE: the project's shipped data, in a fixed order."""
    data = data_dir or repo_root() / "data"
    lines: list[str] = []
    with gzip.open(data / "hh-rlhf-harmless" / "test.jsonl.gz", "rt", encoding="utf-8") as f:
        for row in f:
            lines.append(json.loads(row)["chosen"])
    with open(data / "gsm8k" / "test.jsonl", encoding="utf-8") as f:
        for row in f:
            r = json.loads(row)
            lines.extend([r["question"], r["answer"]])
    with open(data / "xstest" / "xstest_prompts.csv", encoding="utf-8", newline="") as f:
        lines.extend(r["prompt"] for r in csv.DictReader(f))
    extra = data / "tiny_corpus.txt"
    if extra.exists():
        lines.extend(extra.read_text(encoding="utf-8").splitlines())
    return lines


def build_tokenizer(out_dir: Path | str, vocab_size: int = 2048):
    """Train the tiny BPE and save a ``PreTrainedTokenizerFast`` directory; returns the tokenizer.

    ``vocab_size`` counts the ordinary tokens; the 256 specials come after them, as in Llama 3
    (where they start at id 128000).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    tok.add_special_tokens(llama3_special_tokens())
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.chat_template = LLAMA3_CHAT_TEMPLATE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return fast


@dataclass(frozen=True)
class TinyShape:
    """Model size. head_dim is fixed at 64 (vLLM CPU); GQA: fewer KV heads than query heads."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    num_kv_heads: int = 1
    intermediate_size: int = 256
    max_position_embeddings: int = 1024


SHAPES = {
    "micro": TinyShape(),
    "small": TinyShape(hidden_size=256, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=512),
}


def llama_config(tokenizer, shape: TinyShape, **extra):
    from transformers import LlamaConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in NAMED_SPECIALS.values()}
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        head_dim=shape.hidden_size // shape.num_heads,
        max_position_embeddings=shape.max_position_embeddings,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=ids["<|begin_of_text|>"],
        eos_token_id=[ids["<|eot_id|>"], ids["<|eom_id|>"], ids["<|end_of_text|>"]],
        pad_token_id=ids["<|finetune_right_pad_id|>"],
        torch_dtype="float32",
        **extra,
    )


def build_models(
    out_dir: Path | str,
    tokenizer=None,
    shape: str | TinyShape = "micro",
    seed: int = 0,
    reward_model: bool = True,
) -> dict[str, Path]:
    """Write ``policy/`` (causal LM) and, optionally, ``reward/`` (scalar-head classifier).

    Both directories carry the tokenizer, so each is a self-contained HF checkpoint.
    """
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM, LlamaForSequenceClassification

    out = Path(out_dir)
    if tokenizer is None:
        tokenizer = build_tokenizer(out / "tokenizer")
    shp = SHAPES[shape] if isinstance(shape, str) else shape
    if shp.hidden_size // shp.num_heads != 64:
        raise ValueError("tiny models use head_dim 64: vLLM's CPU attention rejects smaller heads")
    paths: dict[str, Path] = {}

    torch.manual_seed(seed)
    policy = LlamaForCausalLM(llama_config(tokenizer, shp))
    policy.generation_config = GenerationConfig(
        bos_token_id=policy.config.bos_token_id,
        eos_token_id=policy.config.eos_token_id,
        pad_token_id=policy.config.pad_token_id,
    )
    paths["policy"] = out / "policy"
    policy.save_pretrained(paths["policy"])
    tokenizer.save_pretrained(paths["policy"])

    if reward_model:
        torch.manual_seed(seed + 1)
        rm = LlamaForSequenceClassification(llama_config(tokenizer, shp, num_labels=1))
        paths["reward"] = out / "reward"
        rm.save_pretrained(paths["reward"])
        tokenizer.save_pretrained(paths["reward"])
    return paths


def build_tiny(out_dir: Path | str, shape: str = "micro", seed: int = 0, vocab_size: int = 2048) -> dict[str, Path]:
    """Tokenizer + models under ``out_dir`` (what ``herd tiny --out DIR`` does)."""
    out = Path(out_dir)
    tokenizer = build_tokenizer(out / "tokenizer", vocab_size=vocab_size)
    paths = build_models(out, tokenizer=tokenizer, shape=shape, seed=seed)
    paths["tokenizer"] = out / "tokenizer"
    return paths
