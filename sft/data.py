"""SFT data path: validated conversations -> token ids + labels -> (optionally) packed rows.

herd tokenizes and masks itself instead of letting TRL apply the chat template: TRL's
``assistant_only_loss`` needs ``{% generation %}`` markers that the Llama 3 templates do not have,
and the loss must cover each assistant turn's content *and* its ``<|eot_id|>`` (core.chat does
this from character offsets). TRL receives ready ``input_ids`` + ``labels`` and skips its own
preparation.

Packing uses TRL's best-fit-decreasing packer (``trl.pack_dataset(strategy="bfd")``: whole
conversations, never split) and keeps each row's ``seq_lengths`` so that position ids restart
per conversation and attention never crosses conversations (see :mod:`herd.sft.collator`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from herd.core.chat import ChatFormatError, tokenize_chat
from herd.core.chat_data import ChatDataError, ChatRow, RowProblem, load_chat_data, problems_message

IGNORE_INDEX = -100


@dataclass
class DataStats:
    """What happened to the rows on the way to training; written into metrics.json."""

    rows_read: int = 0
    """Rows in the data files (usable + malformed)."""
    rows_malformed: int = 0
    """Rows skipped as malformed (bad_rows: skip)."""
    malformed_reasons: dict[str, int] = field(default_factory=dict)
    """Malformed rows per reason kind."""
    rows_truncated: int = 0
    """Rows longer than max_length that were cut (overlong: truncate)."""
    rows_dropped_overlong: int = 0
    """Rows longer than max_length that were dropped (overlong: drop)."""
    rows_dropped_no_target: int = 0
    """Rows left without any assistant token after truncation (nothing to learn from)."""
    examples: int = 0
    """Conversations that reach training."""
    tokens: int = 0
    """Their tokens (what the model reads)."""
    target_tokens: int = 0
    """Their loss-bearing tokens (assistant content + terminators)."""
    packed_rows: int = 0
    """Rows after packing (= examples without packing)."""
    packing_fill: float = 0.0
    """tokens / (packed_rows * max_length): how full the packed rows are."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def encode_row(tokenizer, row: ChatRow, train_on: str) -> dict[str, list[int]]:
    """``{"input_ids", "labels"}`` of one conversation (labels = ids on assistant tokens, else -100)."""
    tc = tokenize_chat(tokenizer, row.messages, train_on=train_on)
    return {"input_ids": tc.input_ids, "labels": tc.labels(IGNORE_INDEX)}


def fit_length(example: dict, max_length: int, overlong: str) -> tuple[dict | None, str | None]:
    """Apply the over-long policy; returns (example or None, what happened or None)."""
    if len(example["input_ids"]) <= max_length:
        return example, None
    if overlong == "drop":
        return None, "dropped_overlong"
    # keep_start: the prompt and the beginning of the answer survive (keep_end would drop the prompt)
    cut = {k: v[:max_length] for k, v in example.items()}
    if all(label == IGNORE_INDEX for label in cut["labels"]):
        return None, "dropped_no_target"
    return cut, "truncated"


def _encode_batch(batch: dict, tokenizer, train_on: str) -> dict:
    """``datasets.map`` worker: ids + labels per conversation, or the template error."""
    out: dict[str, list] = {"input_ids": [], "labels": [], "error": []}
    for messages in batch["messages"]:
        try:
            ex = encode_row(tokenizer, ChatRow(messages, "", ""), train_on)
            out["input_ids"].append(ex["input_ids"])
            out["labels"].append(ex["labels"])
            out["error"].append("")
        except ChatFormatError as e:
            out["input_ids"].append([])
            out["labels"].append([])
            out["error"].append(str(e))
    return out


def encode_all(tokenizer, rows: list[ChatRow], train_on: str, num_proc: int | None) -> list[dict | str]:
    """Per row, in order: ``{"input_ids", "labels"}`` or the template error message.

    With ``num_proc`` > 1 the rows are tokenized in worker processes (datasets.map); the result is
    the same as in-process tokenization, only faster on large data.
    """
    batch = {"messages": [r.messages for r in rows]}
    if not num_proc or num_proc < 2 or len(rows) < 2 * num_proc:
        enc = _encode_batch(batch, tokenizer, train_on)
    else:
        from datasets import Dataset

        ds = Dataset.from_dict(batch).map(
            _encode_batch, batched=True, num_proc=num_proc, remove_columns=["messages"],
            fn_kwargs={"tokenizer": tokenizer, "train_on": train_on}, desc="Tokenizing chats",
        )
        enc = {k: ds[k] for k in ("input_ids", "labels", "error")}
    return [
        err or {"input_ids": ids, "labels": labels}
        for ids, labels, err in zip(enc["input_ids"], enc["labels"], enc["error"])
    ]


def encode_rows(tokenizer, rows: list[ChatRow], cfg, stats: DataStats) -> list[dict]:
    """Tokenize + mask every row and apply the length policy, counting each outcome.

    A row the tokenizer's template cannot render verbatim is a malformed row like any other
    (reported by file and row, fatal unless bad_rows is 'skip').
    """
    examples: list[dict] = []
    problems: list[RowProblem] = []
    counts = {"truncated": 0, "dropped_overlong": 0, "dropped_no_target": 0}
    for row, example in zip(rows, encode_all(tokenizer, rows, cfg.train_on, cfg.num_proc)):
        if isinstance(example, str):
            problems.append(RowProblem(row.source, row.location, f"template: {example}"))
            continue
        example, what = fit_length(example, cfg.max_length, cfg.overlong)
        if what:
            counts[what] += 1
        if example is not None:
            examples.append(example)
    if problems:
        if cfg.bad_rows == "fail":
            raise ChatDataError(problems_message(problems, "rows the chat template cannot mask"))
        stats.rows_malformed += len(problems)
        stats.malformed_reasons["template"] = len(problems)
    stats.rows_truncated = counts["truncated"]
    stats.rows_dropped_overlong = counts["dropped_overlong"]
    stats.rows_dropped_no_target = counts["dropped_no_target"]
    return examples


def pack_examples(examples: list[dict], max_length: int):
    """Best-fit-decreasing packing into rows of at most ``max_length`` tokens (+ ``seq_lengths``).

    All examples go into one packing pass (not TRL's default 1000-row chunks), so only the very
    last rows are partly empty. Deterministic: same lengths in, same rows out.
    """
    from datasets import Dataset
    from trl import pack_dataset

    ds = Dataset.from_list(examples)
    return pack_dataset(ds, max_length, strategy="bfd", map_kwargs={"batch_size": max(len(ds), 1)})


def build_dataset(tokenizer, cfg):
    """Load, validate, encode and (optionally) pack the configured data; returns (Dataset, DataStats).

    The returned dataset has ``input_ids`` and ``labels`` columns, plus ``seq_lengths`` when packed.
    """
    from datasets import Dataset

    chats = load_chat_data(cfg.data, fmt=cfg.data_format, bad_rows=cfg.bad_rows)
    stats = DataStats(
        rows_read=len(chats.rows) + len(chats.problems),
        rows_malformed=len(chats.problems),
        malformed_reasons=chats.problem_counts(),
    )
    examples = encode_rows(tokenizer, chats.rows, cfg, stats)
    if not examples:
        raise ChatDataError(f"{', '.join(map(str, cfg.data))}: no usable rows left for training")
    stats.examples = len(examples)
    stats.tokens = sum(len(e["input_ids"]) for e in examples)
    stats.target_tokens = sum(sum(1 for x in e["labels"] if x != IGNORE_INDEX) for e in examples)
    ds = pack_examples(examples, cfg.max_length) if cfg.packing else Dataset.from_list(examples)
    stats.packed_rows = len(ds)
    stats.packing_fill = round(stats.tokens / (len(ds) * cfg.max_length), 4)
    return ds, stats
