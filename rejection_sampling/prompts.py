"""Prompt sets: read, validate and render every prompt before anything is generated.

All checks run up front so a bad row (no id, no user turn, longer than the context) stops the run
with the file and row named, before an engine starts or any shard is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from herd.core.chat import ChatFormatError, render_with, validate_conversation
from herd.core.jsonl import iter_jsonl
from herd.rejection_sampling.config import PromptSetConfig


class PromptError(ValueError):
    """A prompt file or row that cannot be sampled; the message names the file and row."""


@dataclass
class Prompt:
    """One prompt, ready for the sampler."""

    id: str
    messages: list[dict]
    """The conversation up to and including the last user turn (system prompt included)."""
    prompt_set: str
    where: str
    """'file: row N' for error messages."""
    reference: str | None = None
    scorers: tuple[str, ...] | None = None
    """Scorers that apply (None = all)."""
    text: str = ""
    """Rendered prompt ending with the assistant header."""
    n_tokens: int = 0

    def scorer_metadata(self) -> dict:
        return {"prompt_id": self.id, "prompt_set": self.prompt_set, "reference": self.reference}


def _messages_of(row: dict, where: str) -> list[dict]:
    if "messages" in row:
        messages = row["messages"]
        try:
            validate_conversation(messages)
        except ChatFormatError as e:
            raise PromptError(f"{where}: 'messages': {e}") from e
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    elif "prompt" in row:
        if not isinstance(row["prompt"], str) or not row["prompt"].strip():
            raise PromptError(f"{where}: 'prompt' must be a non-empty string")
        messages = [{"role": "user", "content": row["prompt"]}]
    else:
        raise PromptError(f"{where}: missing column 'messages' or 'prompt' (found {sorted(row)})")
    if messages[-1]["role"] != "user":
        raise PromptError(f"{where}: the last message must be a user turn, got {messages[-1]['role']!r}")
    return messages


def _with_system(messages: list[dict], row: dict, ps: PromptSetConfig, where: str) -> list[dict]:
    """Precedence: the row's own system message, then its ``system_prompt``, then the set's."""
    own = row.get("system_prompt")
    if own is not None and not isinstance(own, str):
        raise PromptError(f"{where}: 'system_prompt' must be a string")
    if messages[0]["role"] == "system":
        if own is not None:
            raise PromptError(f"{where}: both a system message and a 'system_prompt' column")
        return messages
    system = own if own is not None else ps.system_prompt
    return ([{"role": "system", "content": system}] if system else []) + messages


def _row_to_prompt(row, ps: PromptSetConfig, where: str) -> Prompt:
    if not isinstance(row, dict):
        raise PromptError(f"{where}: a row must be a JSON object")
    if "id" not in row:
        raise PromptError(f"{where}: missing column 'id'")
    if not isinstance(row["id"], (str, int)) or isinstance(row["id"], bool) or str(row["id"]) == "":
        raise PromptError(f"{where}: 'id' must be a non-empty string or integer")
    reference = row.get("reference")
    if reference is not None and not isinstance(reference, (str, int, float)):
        raise PromptError(f"{where}: 'reference' must be a string or number")
    messages = _with_system(_messages_of(row, where), row, ps, where)
    return Prompt(
        id=str(row["id"]),
        messages=messages,
        prompt_set=ps.label(),
        where=where,
        reference=None if reference is None else str(reference),
        scorers=tuple(ps.scorers) if ps.scorers is not None else None,
    )


def _jsonl_lines(path: Path, limit: int | None):
    """``(where, parsed row)`` per non-blank line of a JSONL file (gzipped when it ends in .gz);
    rows that are not objects are reported by the caller, which names the missing field."""
    for count, (line_no, row) in enumerate(iter_jsonl(path, PromptError, require_object=False)):
        if limit is not None and count >= limit:
            break
        yield f"{path}: row {line_no}", row


def _hh_prompt_row(row, where: str, stem: str, line: str) -> dict:
    """An HH-RLHF dialogue as a prompt: every turn up to its last user turn."""
    from herd.core.chat_data import parse_hh_dialogue

    if not isinstance(row, dict) or not isinstance(row.get("chosen"), str):
        raise PromptError(f"{where}: missing column 'chosen' (an HH-RLHF dialogue)")
    try:
        messages = parse_hh_dialogue(row["chosen"])
    except ChatFormatError as e:
        raise PromptError(f"{where}: {e}") from e
    while messages and messages[-1]["role"] != "user":
        messages = messages[:-1]
    return {"id": f"{stem}-{line}", "messages": messages}


def _raw_rows(ps: PromptSetConfig) -> list[tuple[str, object]]:
    path = Path(ps.path)
    if not path.is_file():
        raise PromptError(f"{path}: prompt file not found")
    if ps.format == "gsm8k":
        from herd.core.verifiers import load_gsm8k

        try:
            rows = load_gsm8k(path, limit=ps.limit)
        except ValueError as e:
            raise PromptError(str(e)) from e
        return [(f"{path}: row {r['id']}", r) for r in rows]
    rows = list(_jsonl_lines(path, ps.limit))
    if ps.format == "hh-rlhf":
        stem = path.name.split(".")[0]
        return [(w, _hh_prompt_row(r, w, f"{ps.label()}-{stem}", w.rsplit(" ", 1)[1])) for w, r in rows]
    return rows


def read_prompt_set(ps: PromptSetConfig) -> list[Prompt]:
    """The rows of one prompt file as :class:`Prompt` objects (not yet rendered)."""
    rows = _raw_rows(ps)
    if not rows:
        raise PromptError(f"{ps.path}: prompt file is empty (no rows)")
    return [_row_to_prompt(row, ps, where) for where, row in rows]


def load_prompts(sets: list[PromptSetConfig]) -> list[Prompt]:
    """All prompt sets in order; ids must be unique across sets (they seed the samples)."""
    prompts: list[Prompt] = []
    seen: dict[str, str] = {}
    for ps in sets:
        for p in read_prompt_set(ps):
            if p.id in seen:
                raise PromptError(f"{p.where}: duplicate prompt id {p.id!r} (first at {seen[p.id]})")
            seen[p.id] = p.where
            prompts.append(p)
    return prompts


def render_prompts(prompts: list[Prompt], tokenizer, max_context: int, max_new_tokens: int) -> None:
    """Render each prompt with the sampler's chat template and check it fits the context."""
    for p in prompts:
        p.text = render_with(tokenizer, p.messages, add_generation_prompt=True)
        p.n_tokens = len(tokenizer(p.text, add_special_tokens=False)["input_ids"])
        if p.n_tokens + max_new_tokens > max_context:
            raise PromptError(
                f"{p.where} (id {p.id!r}): prompt is {p.n_tokens} tokens; with max_new_tokens "
                f"{max_new_tokens} it exceeds the model context of {max_context} tokens"
            )


def model_context(model: str) -> int:
    """The sampler's context length (max_position_embeddings) from its config.

    A local directory is read directly; anything else is treated as a hub id and resolved through
    transformers (offline, that needs it in the local cache).
    """
    cfg_file = Path(model) / "config.json"
    if cfg_file.is_file():
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    elif Path(model).exists() or model.startswith((".", "/", "~")):
        raise FileNotFoundError(f"{model}: not a Hugging Face model directory (no config.json)")
    else:
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(model).to_dict()
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        if isinstance(cfg.get(key), int):
            return cfg[key]
    text_cfg = cfg.get("text_config") or {}
    if isinstance(text_cfg.get("max_position_embeddings"), int):
        return text_cfg["max_position_embeddings"]
    raise ValueError(f"{model}: config has no max_position_embeddings; set max_context in the stage config")
