"""GuardClassifier: any causal LM in Llama Guard format as a safety classifier.

Score (FORMATS.md; Llama Guard 3 model card): P(first generated token is ``unsafe``). The prompt
ends right after the assistant header and real guards first emit ``\\n\\n`` (observed
``'\\n\\nsafe'``), so the score is the probability that the first *non-whitespace* token is
``unsafe``, from ONE forward pass over ``prompt + "\\n\\n"``:

    P = p(unsafe | prompt) + p("\\n\\n" | prompt) * p(unsafe | prompt, "\\n\\n")

(the logits at the last two positions give both terms). When the rendered prompt already ends
with whitespace the prefix is empty and P = p(unsafe | prompt). Categories are generated (greedy,
after ``"unsafe\\n"``) only for conversations whose score passes the threshold, and parsed
tolerantly. A real Llama-Guard-3-1B/8B directory works unchanged: its tokenizer's chat template is
used (``form="auto"``), and its ``unsafe`` is one token.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

from herd.core.chat import Conversation, stop_token_ids
from herd.core.scoring import Verdict
from herd.safety.base import SafetyClassifier, error_verdict
from herd.safety.rendering import Form, render_many
from herd.safety.taxonomy import Policy
from herd.safety.verdicts import parse_verdict

Backend = Literal["hf", "vllm"]
DEFAULT_PREFIX = "\n\n"


class HFGuardEngine:
    """Scoring and greedy generation with a transformers model in this process."""

    def __init__(self, model_path: str, batch_size: int = 8, dtype: str = "auto", device: str | None = None, model_obj=None):
        from herd.core.models import ModelSpec, load_causal_lm

        self.model = model_obj if model_obj is not None else load_causal_lm(ModelSpec(model_path, dtype=dtype, device=device))
        self.batch_size = batch_size

    def _left_pad(self, seqs: list[list[int]], pad_id: int):
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s):] = torch.tensor(s)
            mask[i, width - len(s):] = 1
        # Left padding shifts positions: give each row its own, as generate() does.
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.model.device
        return ids.to(dev), mask.to(dev), pos.to(dev)

    def score(self, items: Sequence[tuple[list[int], list[int], int]], pad_id: int) -> list[float]:
        """Items are ``(prompt ids, whitespace-prefix ids, unsafe id)``; see the module docstring."""
        import torch

        out: list[float] = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start:start + self.batch_size]
            keep = max(len(ws) for _, ws, _ in batch) + 1
            ids, mask, pos = self._left_pad([p + ws for p, ws, _ in batch], pad_id)
            with torch.no_grad():
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for row, (_, ws, u) in enumerate(batch):
                lp = logp[row, keep - len(ws) - 1:]  # predictions after the prompt, then after each ws token
                direct = float(lp[0, u].exp()) if ws else 0.0
                via = sum(float(lp[j, t]) for j, t in enumerate(ws)) + float(lp[len(ws), u])
                out.append(direct + math.exp(via))
        return out

    def generate(self, prompts: Sequence[list[int]], max_tokens: int, stop_ids: list[int], pad_id: int) -> list[list[int]]:
        import torch

        out: list[list[int]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = list(prompts[start:start + self.batch_size])
            ids, mask, _ = self._left_pad(batch, pad_id)
            with torch.no_grad():
                gen = self.model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_tokens,
                                          eos_token_id=stop_ids, pad_token_id=pad_id)
            for row in gen[:, ids.shape[1]:].tolist():
                cut = next((i for i, t in enumerate(row) if t in stop_ids), len(row))
                out.append(row[:cut])
        return out

    def close(self) -> None:
        self.model = None


class GuardClassifier(SafetyClassifier):
    """A Llama-Guard-format checkpoint as a :class:`SafetyClassifier`.

    ``form``: prompt rendering ('auto' = the checkpoint's guard template if it has one, else the
    built-in FORMATS.md form; 'builtin', 'template', 'cookbook'). ``verdict_prefix``: the
    whitespace the model emits before its verdict (None = ``"\\n\\n"`` unless the prompt already
    ends with whitespace).
    """

    def __init__(
        self,
        model: str,
        policy: Policy | None = None,
        form: Form = "auto",
        backend: Backend = "hf",
        threshold: float = 0.5,
        batch_size: int = 8,
        max_new_tokens: int = 16,
        verdict_prefix: str | None = None,
        fail_closed: bool = True,
        dtype: str = "auto",
        device: str | None = None,
        engine_config=None,
        model_obj=None,
        tokenizer=None,
    ):
        from herd.core.models import load_tokenizer

        self.model_path = str(model)
        self.tokenizer = tokenizer or load_tokenizer(self.model_path)
        self.policy = policy or Policy.llama_guard_3_8b()
        self.form = form
        self.threshold = threshold
        self.max_new_tokens = max_new_tokens
        self.verdict_prefix = verdict_prefix
        self.fail_closed = fail_closed
        self.backend = backend
        self.unsafe_id = self._first_token("unsafe")
        if self.unsafe_id == self._first_token("safe"):
            raise ValueError(f"{model}: 'safe' and 'unsafe' start with the same token; P(unsafe) is undefined")
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        if backend == "hf":
            self.engine = HFGuardEngine(self.model_path, batch_size, dtype, device, model_obj)
        elif backend == "vllm":
            from herd.safety.guard_vllm import VLLMGuardEngine

            self.engine = VLLMGuardEngine(self.model_path, engine_config)
        else:
            raise ValueError(f"unknown guard backend {backend!r} (expected 'hf' or 'vllm')")

    def _first_token(self, word: str) -> int:
        return self.tokenizer(word, add_special_tokens=False)["input_ids"][0]

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _prefix(self, prompt: str) -> str:
        if self.verdict_prefix is not None:
            return self.verdict_prefix
        return "" if prompt[-1:].isspace() else DEFAULT_PREFIX

    def render(self, conversations: Sequence[Conversation]) -> list[str | Exception]:
        return render_many(conversations, self.policy, self.form, self.tokenizer)

    def _engine_call(self, method: str, *args):
        if self.backend == "hf":
            return getattr(self.engine, method)(*args, self.pad_id)
        return getattr(self.engine, method)(*args)

    def score_prompts(self, prompts: Sequence[str]) -> list[float]:
        """P(unsafe) for already-rendered guard prompts."""
        items = [(self._ids(p), self._ids(self._prefix(p)) if self._prefix(p) else [], self.unsafe_id) for p in prompts]
        return self._engine_call("score", items) if items else []

    def categories_for(self, prompts: Sequence[str]) -> list[list[str]]:
        """Generate the category line after ``unsafe\\n`` and parse it against the policy."""
        inputs = [self._ids(p + self._prefix(p) + "unsafe\n") for p in prompts]
        outs = self._engine_call("generate", inputs, self.max_new_tokens, self.stop_ids) if inputs else []
        texts = [self.tokenizer.decode(o, skip_special_tokens=True) for o in outs]
        return [parse_verdict("unsafe\n" + t, self.policy.active_codes).categories for t in texts]

    def classify(self, conversations: Sequence[Conversation]) -> list[Verdict]:
        rendered = self.render(conversations)
        out: list[Verdict | None] = [
            error_verdict(f"cannot render guard prompt: {r}", self.fail_closed) if isinstance(r, Exception) else None
            for r in rendered
        ]
        ok = [i for i, r in enumerate(rendered) if not isinstance(r, Exception)]
        try:
            scores = self.score_prompts([rendered[i] for i in ok])
            unsafe = [i for i, s in zip(ok, scores) if s >= self.threshold]
            cats = dict(zip(unsafe, self.categories_for([rendered[i] for i in unsafe])))
        except Exception as e:  # an engine failure fails the whole batch closed, not the process
            return [v or error_verdict(f"guard failed: {type(e).__name__}: {e}", self.fail_closed) for v in out]
        for i, s in zip(ok, scores):
            out[i] = Verdict(safe=s < self.threshold, categories=cats.get(i, []), p_unsafe=s)
        return out  # type: ignore[return-value]

    def close(self) -> None:
        if getattr(self, "engine", None) is not None:
            self.engine.close()
            self.engine = None
