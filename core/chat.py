"""The Llama 3 chat format: rendering, tokenization and the two token masks herd trains with.

Every stage speaks in conversations (lists of ``{"role", "content"}`` dicts). This module turns
them into what the models see, byte for byte as in ../shared/spec/FORMATS.md (the Llama 3.0
Instruct format), and computes

* the **assistant mask** – the tokens SFT puts its loss on (assistant content plus the
  ``<|eot_id|>``/``<|eom_id|>`` that ends it, so the model learns to stop), on every assistant
  turn or only the last one;
* the **formatting mask** – header tokens (``<|start_header_id|>``, role, ``<|end_header_id|>``
  and the ``\\n\\n`` after it) and termination tokens, which the Llama 3 DPO recipe (§4.1.4)
  removes from the chosen/rejected log-probs.

When a tokenizer ships its own chat template (a real Llama 3.1 checkpoint adds a system preamble,
for instance) the text is rendered by that template, and the masks are located in what it
rendered; a template that drops or rewrites a message's content is reported, not silently
mis-masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
PAD = "<|finetune_right_pad_id|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOM = "<|eom_id|>"
EOT = "<|eot_id|>"
PYTHON_TAG = "<|python_tag|>"

ROLES: tuple[str, ...] = ("system", "user", "assistant", "ipython")
TERMINATORS: tuple[str, ...] = (EOT, EOM, EOS)

#: The Llama 3 (8B Instruct) chat template as shipped with that checkpoint — the plain form of
#: FORMATS.md — plus Llama 3.1's rule that an assistant tool call (content starting with
#: ``<|python_tag|>``) ends with ``<|eom_id|>`` instead of ``<|eot_id|>``.
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set body = message['content'] | trim %}"
    "{% set end = '<|eom_id|>' if (message['role'] == 'assistant' and body.startswith('<|python_tag|>')) else '<|eot_id|>' %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ body + end %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

Message = Mapping[str, str]
Conversation = Sequence[Message]
TrainOn = Literal["all", "last"]


class ChatFormatError(ValueError):
    """A conversation that cannot be rendered, or a template whose output cannot be masked."""


def validate_conversation(messages: Conversation) -> None:
    """Raise :class:`ChatFormatError` for what the format cannot express.

    Checked: a non-empty list of dicts, known roles, string content, at most one leading system
    message. Callers that read datasets wrap this to add the file and row.
    """
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ChatFormatError("conversation has no messages")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ChatFormatError(f"message {i} is not a mapping")
        role = message.get("role")
        if role not in ROLES:
            raise ChatFormatError(f"message {i} has unknown role {role!r} (expected one of {ROLES})")
        if not isinstance(message.get("content"), str):
            raise ChatFormatError(f"message {i} ({role}) has no string 'content'")
        if role == "system" and i != 0:
            raise ChatFormatError(f"message {i}: a system message may only come first")


def _terminator(message: Message) -> str:
    """``<|eom_id|>`` ends an assistant tool call (content starts with ``<|python_tag|>``)."""
    if message["role"] == "assistant" and message["content"].strip().startswith(PYTHON_TAG):
        return EOM
    return EOT


def header(role: str) -> str:
    return f"{START_HEADER}{role}{END_HEADER}\n\n"


def render(messages: Conversation, add_generation_prompt: bool = False, bos: bool = True) -> str:
    """Render to the exact Llama 3 string (content stripped, as the official template does)."""
    validate_conversation(messages)
    parts = [BOS] if bos else []
    for message in messages:
        parts.append(header(message["role"]) + message["content"].strip() + _terminator(message))
    if add_generation_prompt:
        parts.append(header("assistant"))
    return "".join(parts)


def render_with(
    tokenizer, messages: Conversation, add_generation_prompt: bool = False
) -> str:
    """Render with the tokenizer's own chat template when it has one, else the built-in form."""
    if getattr(tokenizer, "chat_template", None):
        validate_conversation(messages)
        return tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=add_generation_prompt
        )
    return render(messages, add_generation_prompt=add_generation_prompt)


@dataclass
class TokenizedChat:
    """Token ids and per-token masks (1 = selected) of one rendered conversation."""

    input_ids: list[int]
    assistant_mask: list[int]
    format_mask: list[int]
    text: str

    def labels(self, ignore_index: int = -100) -> list[int]:
        """SFT labels: the token id where the assistant mask is set, ``ignore_index`` elsewhere."""
        return [t if m else ignore_index for t, m in zip(self.input_ids, self.assistant_mask)]


def _assistant_spans(text: str, messages: Conversation, train_on: TrainOn) -> list[tuple[int, int]]:
    """Character spans [start, end) of trained assistant content + its terminator in ``text``.

    Messages are located in order; each content must appear verbatim (after stripping), followed
    by a terminator. Anything else means the template rewrote the content and masks would lie.
    """
    spans: list[tuple[int, int]] = []
    cursor = 0
    for i, message in enumerate(messages):
        content = message["content"].strip()
        marker = header(message["role"])
        at = text.find(marker, cursor)
        if at < 0:
            raise ChatFormatError(f"message {i} ({message['role']}): header not found in rendered text")
        start = at + len(marker)
        # A template may prepend to a message (Llama 3.1's system preamble); content is the tail.
        end_of_turn = min(
            (p for p in (text.find(t, start) for t in (EOT, EOM)) if p >= 0), default=-1
        )
        if end_of_turn < 0 or not text[start:end_of_turn].endswith(content):
            raise ChatFormatError(
                f"message {i} ({message['role']}): the chat template does not render its content "
                "verbatim, so the assistant mask cannot be located"
            )
        content_start = end_of_turn - len(content)
        terminator_end = end_of_turn + len(EOT)  # EOT and EOM have the same length
        if message["role"] == "assistant":
            spans.append((content_start, terminator_end))
        cursor = terminator_end
    if train_on == "last":
        spans = spans[-1:]
    return spans


def tokenize_chat(
    tokenizer,
    messages: Conversation,
    train_on: TrainOn = "all",
    add_generation_prompt: bool = False,
) -> TokenizedChat:
    """Render with the tokenizer's template (or the built-in one) and compute both masks.

    Masks come from character offsets of the rendered text, so they are right for any template
    that renders message content verbatim; tokens are never re-tokenized piecewise (piecewise BPE
    can differ from whole-string BPE at boundaries).
    """
    text = render_with(tokenizer, messages, add_generation_prompt=add_generation_prompt)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"]
    offsets: list[tuple[int, int]] = enc["offset_mapping"]
    spans = _assistant_spans(text, messages, train_on)
    assistant_mask = [0] * len(ids)
    for t, (s, e) in enumerate(offsets):
        for a, b in spans:
            if s >= a and e <= b and e > s:
                assistant_mask[t] = 1
            elif s < b and e > a and not (s >= a and e <= b):
                raise ChatFormatError(
                    f"token {t} ({text[s:e]!r}) straddles an assistant-turn boundary"
                )
    return TokenizedChat(ids, assistant_mask, format_token_mask(tokenizer, ids), text)


def special_ids(tokenizer) -> dict[str, int]:
    """Ids of the Llama 3 special tokens in this tokenizer (missing ones raise)."""
    out = {}
    for tok in (BOS, EOS, PAD, START_HEADER, END_HEADER, EOM, EOT, PYTHON_TAG):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if tid is None or tid == tokenizer.unk_token_id:
            raise ChatFormatError(f"tokenizer has no {tok} token: not a Llama 3 tokenizer")
        out[tok] = tid
    return out


def format_token_mask(tokenizer, ids: Sequence[int]) -> list[int]:
    """1 on header tokens (start, role, end, the ``\\n\\n`` after it) and terminators, else 0."""
    sid = special_ids(tokenizer)
    start, end = sid[START_HEADER], sid[END_HEADER]
    terminators = {sid[EOT], sid[EOM], sid[EOS]}
    mask = [0] * len(ids)
    in_header = False
    after_header = False
    for i, tid in enumerate(ids):
        if tid == start:
            in_header = True
        if in_header or tid in terminators:
            mask[i] = 1
        elif after_header and tokenizer.decode([tid]).strip() == "" and "\n" in tokenizer.decode([tid]):
            mask[i] = 1  # the "\n\n" that closes a header
        after_header = False
        if tid == end:
            in_header = False
            after_header = True
    return mask


def stop_token_ids(tokenizer) -> list[int]:
    """Ids of ``<|eot_id|>``, ``<|eom_id|>``, ``<|end_of_text|>``: generation stops at any."""
    sid = special_ids(tokenizer)
    return [sid[EOT], sid[EOM], sid[EOS]]
