"""SFT data path: exact labels, length policy, packing, and attention isolation of packed rows."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from herd.core.chat_data import ChatRow
from herd.sft.collator import PackedRowsCollator, packed_position_ids
from herd.sft.data import IGNORE_INDEX, encode_row, fit_length, pack_examples

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name a prime."},
    {"role": "assistant", "content": "Seven."},
    {"role": "user", "content": "Another one?"},
    {"role": "assistant", "content": "Eleven, and then thirteen."},
]


def expected_tokens(tok, messages, train_on):
    """Build ids + labels piece by piece from the Llama 3 format: header (masked), content, <|eot_id|>."""
    ids, labels = [tok.convert_tokens_to_ids("<|begin_of_text|>")], [IGNORE_INDEX]
    assistant_turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    trained = assistant_turns if train_on == "all" else assistant_turns[-1:]
    for i, m in enumerate(messages):
        head = tok(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n", add_special_tokens=False)["input_ids"]
        body = tok(m["content"], add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|eot_id|>")]
        ids += head + body
        labels += [IGNORE_INDEX] * len(head) + (body if i in trained else [IGNORE_INDEX] * len(body))
    return ids, labels


@pytest.mark.parametrize("train_on", ["all", "last"])
def test_labels_are_exactly_assistant_tokens_and_their_eot(tiny_tokenizer, train_on):
    row = ChatRow(CONVERSATION, "mem", "line 1")
    got = encode_row(tiny_tokenizer, row, train_on)
    ids, labels = expected_tokens(tiny_tokenizer, CONVERSATION, train_on)
    assert got["input_ids"] == ids
    assert got["labels"] == labels
    # read back: the trained tokens decode to the assistant replies, each closed by <|eot_id|>
    trained = tiny_tokenizer.decode([t for t in got["labels"] if t != IGNORE_INDEX])
    want = "Seven.<|eot_id|>Eleven, and then thirteen.<|eot_id|>" if train_on == "all" else "Eleven, and then thirteen.<|eot_id|>"
    assert trained == want


def test_overlong_rows_truncate_or_drop():
    ex = {"input_ids": list(range(10)), "labels": [IGNORE_INDEX] * 6 + [6, 7, 8, 9]}
    assert fit_length(ex, 10, "truncate") == (ex, None)
    cut, what = fit_length(ex, 8, "truncate")
    assert what == "truncated" and cut == {"input_ids": list(range(8)), "labels": [IGNORE_INDEX] * 6 + [6, 7]}
    assert fit_length(ex, 8, "drop") == (None, "dropped_overlong")
    # cut before the first assistant token: nothing left to learn, so the row goes
    assert fit_length(ex, 5, "truncate") == (None, "dropped_no_target")


def test_best_fit_packing_keeps_every_conversation_whole():
    lengths = [7, 3, 5, 2, 8, 1, 4, 6, 2]
    examples = [{"input_ids": [100 + i] * n, "labels": [i] * n} for i, n in enumerate(lengths)]
    packed = pack_examples(examples, max_length=10)
    rows = packed.to_list()
    assert all(len(r["input_ids"]) <= 10 and sum(r["seq_lengths"]) == len(r["input_ids"]) for r in rows)
    pieces = []
    for r in rows:
        start = 0
        for n in r["seq_lengths"]:
            pieces.append(tuple(r["input_ids"][start:start + n]))
            start += n
    assert Counter(pieces) == Counter(tuple(e["input_ids"]) for e in examples)
    assert len(rows) == 4  # 38 tokens in bins of 10: best-fit decreasing reaches the minimum


def test_position_ids_restart_per_conversation_and_padding():
    assert packed_position_ids([3, 2], 7).tolist() == [0, 1, 2, 0, 1, 0, 1]
    batch = PackedRowsCollator(pad_token_id=4)(
        [{"input_ids": [5, 6, 7], "labels": [5, 6, 7], "seq_lengths": [2, 1]},
         {"input_ids": [8], "labels": [-100], "seq_lengths": [1]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 4, 4]]
    assert batch["labels"].tolist() == [[5, 6, 7], [-100, -100, -100]]
    assert batch["position_ids"].tolist() == [[0, 1, 0], [0, 0, 1]]
    assert "attention_mask" not in batch


def test_packed_row_logits_equal_each_conversation_alone(tiny_kit, tiny_tokenizer):
    """Attention never crosses conversations: a packed row computes what separate rows compute."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_kit["policy"]), attn_implementation="sdpa").eval()
    convs = [CONVERSATION, CONVERSATION[1:3], [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]]
    examples = [encode_row(tiny_tokenizer, ChatRow(c, "mem", "-"), "all") for c in convs]
    rows = [{**ex, "seq_lengths": [len(ex["input_ids"])]} for ex in examples]
    packed = {"input_ids": sum((e["input_ids"] for e in examples), []),
              "labels": sum((e["labels"] for e in examples), []),
              "seq_lengths": [len(e["input_ids"]) for e in examples]}
    collate = PackedRowsCollator(tiny_tokenizer.pad_token_id)
    with torch.no_grad():
        b = collate([packed, rows[1]])  # a second, shorter row forces padding as well
        packed_logits = model(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False).logits
        alone = [model(input_ids=torch.tensor([e["input_ids"]]), use_cache=False).logits[0] for e in examples]
    assert torch.allclose(packed_logits[0, : sum(packed["seq_lengths"])], torch.cat(alone), atol=1e-5)
    n1 = len(examples[1]["input_ids"])
    assert torch.allclose(packed_logits[1, :n1], alone[1], atol=1e-5)


def test_dataset_stats_count_skipped_truncated_and_dropped_rows(tiny_kit, tiny_tokenizer, chat_file, tmp_path):
    import json

    from herd.sft import SFTConfig
    from herd.sft.data import build_dataset

    lines = chat_file.read_text().splitlines()
    lines += [json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]}), "{oops"]
    data = tmp_path / "mixed.jsonl"
    data.write_text("\n".join(lines) + "\n")
    lengths = [len(encode_row(tiny_tokenizer, ChatRow(json.loads(x)["messages"], "-", "-"), "all")["input_ids"])
               for x in lines[:16]]
    limit = sorted(lengths)[8]  # about half the rows are longer than this

    def stats(**kw):
        cfg = SFTConfig(model=str(tiny_kit["policy"]), data=[str(data)], output_dir="unused",
                        bad_rows="skip", max_length=limit, **kw)
        return build_dataset(tiny_tokenizer, cfg)

    ds, s = stats(overlong="drop", packing=False)
    longer = sum(n > limit for n in lengths)
    assert (s.rows_read, s.rows_malformed) == (18, 2)
    assert s.malformed_reasons == {"empty assistant turn": 1, "not valid JSON": 1}
    assert s.rows_dropped_overlong == longer and s.examples == 16 - longer == len(ds)
    ds, s = stats(overlong="truncate", packing=True)
    assert s.rows_truncated + s.rows_dropped_no_target == longer and s.rows_dropped_overlong == 0
    assert max(len(r) for r in ds["input_ids"]) <= limit and sum(map(sum, ds["seq_lengths"])) == s.tokens


def test_tokenizing_in_worker_processes_gives_the_same_examples(tiny_tokenizer):
    from herd.sft.data import encode_all

    rows = [ChatRow(CONVERSATION, "mem", f"line {i}") for i in range(3)]
    rows += [ChatRow(CONVERSATION[1:3], "mem", f"line {i}") for i in range(3, 6)]
    assert encode_all(tiny_tokenizer, rows, "all", num_proc=2) == encode_all(tiny_tokenizer, rows, "all", None)
