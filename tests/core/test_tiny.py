"""The tiny kit: Llama 3 special tokens under their real names, GQA/rope/head_dim, same bytes."""

from __future__ import annotations

import json

from herd.core.tiny import build_tiny, llama3_special_tokens


def test_special_tokens_in_llama3_order(tiny_tokenizer):
    specials = llama3_special_tokens()
    assert len(specials) == 256
    base = tiny_tokenizer.convert_tokens_to_ids("<|begin_of_text|>")
    # Same relative layout as Llama 3.1 (where base = 128000).
    offsets = {t: tiny_tokenizer.convert_tokens_to_ids(t) - base for t in specials}
    assert offsets["<|end_of_text|>"] == 1
    assert offsets["<|finetune_right_pad_id|>"] == 4
    assert offsets["<|start_header_id|>"] == 6 and offsets["<|end_header_id|>"] == 7
    assert offsets["<|eom_id|>"] == 8 and offsets["<|eot_id|>"] == 9 and offsets["<|python_tag|>"] == 10
    assert offsets["<|reserved_special_token_247|>"] == 255
    assert len(tiny_tokenizer) == base + 256
    # Specials are atomic: never split by BPE.
    assert tiny_tokenizer("<|eot_id|>hi", add_special_tokens=False)["input_ids"][0] == base + 9


def test_model_config_shapes(tiny_kit):
    cfg = json.loads((tiny_kit["policy"] / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert cfg["rope_parameters"]["rope_theta"] == 500000.0 if "rope_parameters" in cfg else cfg["rope_theta"] == 500000.0
    assert cfg["head_dim"] == 64
    assert cfg["num_key_value_heads"] < cfg["num_attention_heads"]  # GQA
    rm = json.loads((tiny_kit["reward"] / "config.json").read_text())
    assert rm["architectures"] == ["LlamaForSequenceClassification"] and len(rm["id2label"]) == 1
    assert rm["pad_token_id"] is not None


def test_same_seed_same_bytes(tmp_path, tiny_kit):
    again = build_tiny(tmp_path / "again", shape="micro", seed=0)
    for name in ("policy", "reward", "tokenizer"):
        first = sorted(p for p in tiny_kit[name].rglob("*") if p.is_file())
        second = sorted(p for p in again[name].rglob("*") if p.is_file())
        assert [p.name for p in first] == [p.name for p in second]
        for a, b in zip(first, second):
            assert a.read_bytes() == b.read_bytes(), f"{name}/{a.name} differs between two builds"


def test_different_seed_different_weights(tmp_path, tiny_kit):
    other = build_tiny(tmp_path / "other", shape="micro", seed=1)
    assert (other["policy"] / "model.safetensors").read_bytes() != (tiny_kit["policy"] / "model.safetensors").read_bytes()
