"""Llama 3 chat rendering pinned byte for byte (FORMATS.md) and masks pinned token by token."""

from __future__ import annotations

import pytest

from herd.core.chat import (
    LLAMA3_CHAT_TEMPLATE,
    ChatFormatError,
    render,
    render_with,
    stop_token_ids,
    tokenize_chat,
)

FORMATS_EXAMPLE = [
    {"role": "system", "content": "You are a helpful assistant"},
    {"role": "user", "content": "Answer who are you in the form of jeopardy?"},
]


def test_formats_md_example_byte_for_byte():
    expected = (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nAnswer who are you in the form of jeopardy?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert render(FORMATS_EXAMPLE, add_generation_prompt=True) == expected


def test_multi_turn_ipython_and_stripping():
    conv = [
        {"role": "user", "content": "  What is 2+2? \n"},
        {"role": "assistant", "content": "<|python_tag|>calc(2+2)"},
        {"role": "ipython", "content": "4"},
        {"role": "assistant", "content": "It is 4."},
    ]
    assert render(conv) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n<|python_tag|>calc(2+2)<|eom_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\n4<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nIt is 4.<|eot_id|>"
    )


def test_shipped_template_renders_like_builtin(tiny_tokenizer):
    conv = FORMATS_EXAMPLE + [{"role": "assistant", "content": "What is a llama?"}, {"role": "user", "content": "More."}]
    assert tiny_tokenizer.chat_template == LLAMA3_CHAT_TEMPLATE
    for gen in (False, True):
        assert render_with(tiny_tokenizer, conv, add_generation_prompt=gen) == render(conv, add_generation_prompt=gen)


@pytest.mark.parametrize(
    "bad, msg",
    [([], "no messages"), ([{"role": "bot", "content": "x"}], "unknown role"), ([{"role": "user"}], "content"),
     ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "system")],
)
def test_invalid_conversations(bad, msg):
    with pytest.raises(ChatFormatError, match=msg):
        render(bad)


MULTI = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Sum 2 and 3"},
    {"role": "assistant", "content": "5"},
]


def _runs(tok, tc):
    """Consecutive tokens with equal (assistant, format) mask values, decoded and joined.

    Every token belongs to exactly one run, so comparing runs checks each token's two mask bits
    while staying independent of how BPE happens to split words.
    """
    runs: list[tuple[str, int, int]] = []
    for tid, a, f in zip(tc.input_ids, tc.assistant_mask, tc.format_mask):
        piece = tok.decode([tid])
        if runs and runs[-1][1:] == (a, f):
            runs[-1] = (runs[-1][0] + piece, a, f)
        else:
            runs.append((piece, a, f))
    return runs


def test_masks_token_by_token(tiny_tokenizer):
    tok = tiny_tokenizer
    tc = tokenize_chat(tok, MULTI)
    assert tok.decode(tc.input_ids) == render(MULTI)
    header = "<|start_header_id|>{}<|end_header_id|>\n\n"
    assert _runs(tok, tc) == [
        ("<|begin_of_text|>", 0, 0),
        (header.format("system"), 0, 1),
        ("Be brief.", 0, 0),
        ("<|eot_id|>" + header.format("user"), 0, 1),
        ("Hi", 0, 0),
        ("<|eot_id|>" + header.format("assistant"), 0, 1),
        ("Hello!", 1, 0),
        ("<|eot_id|>", 1, 1),  # trained: the model must learn to stop; also a formatting token
        (header.format("user"), 0, 1),
        ("Sum 2 and 3", 0, 0),
        ("<|eot_id|>" + header.format("assistant"), 0, 1),
        ("5", 1, 0),
        ("<|eot_id|>", 1, 1),
    ]
    labels = tc.labels()
    assert len(labels) == len(tc.input_ids)
    assert tok.decode([l for l in labels if l != -100]) == "Hello!<|eot_id|>5<|eot_id|>"


def test_train_on_last_only(tiny_tokenizer):
    tc = tokenize_chat(tiny_tokenizer, MULTI, train_on="last")
    assert tiny_tokenizer.decode([i for i, m in zip(tc.input_ids, tc.assistant_mask) if m]) == "5<|eot_id|>"


def test_eom_terminates_tool_call_and_is_trained(tiny_tokenizer):
    conv = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "<|python_tag|>f()"}]
    tc = tokenize_chat(tiny_tokenizer, conv)
    trained = tiny_tokenizer.decode([i for i, m in zip(tc.input_ids, tc.assistant_mask) if m])
    assert trained == "<|python_tag|>f()<|eom_id|>"


def test_masks_follow_a_template_with_a_system_preamble(tiny_tokenizer):
    """A Llama-3.1-style template adds text before the system content; masks must still line up."""
    tok = tiny_tokenizer
    original = tok.chat_template
    tok.chat_template = LLAMA3_CHAT_TEMPLATE.replace(
        "+ body + end",
        "+ ('Cutting Knowledge Date: December 2023\\n\\n' if message['role'] == 'system' else '') + body + end",
    )
    try:
        tc = tokenize_chat(tok, MULTI)
        assert "Cutting Knowledge Date: December 2023\n\nBe brief.<|eot_id|>" in tc.text
        assert tok.decode([i for i, m in zip(tc.input_ids, tc.assistant_mask) if m]) == "Hello!<|eot_id|>5<|eot_id|>"
    finally:
        tok.chat_template = original


def test_template_that_rewrites_content_is_refused(tiny_tokenizer):
    tok = tiny_tokenizer
    original = tok.chat_template
    tok.chat_template = LLAMA3_CHAT_TEMPLATE.replace("message['content'] | trim", "message['content'] | trim | upper")
    try:
        with pytest.raises(ChatFormatError, match="verbatim"):
            tokenize_chat(tok, MULTI)
    finally:
        tok.chat_template = original


def test_stop_tokens(tiny_tokenizer):
    ids = stop_token_ids(tiny_tokenizer)
    assert tiny_tokenizer.convert_ids_to_tokens(ids) == ["<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"]
