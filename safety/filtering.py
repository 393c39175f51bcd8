"""filter_dataset: drop rows whose prompt or response a guard judges unsafe, and say why.

Rows are plain dicts (or a ``datasets.Dataset``) holding either ``messages``/``conversation`` (a
list of ``{role, content}``) or ``prompt`` with an optional ``response``. The prompt (the
conversation up to and including the last user turn) and, when there is one, the response (the
whole conversation ending in the assistant turn) are classified separately, in batches. Failed
classifications fail closed by default (dropped, reason ``error``) and are always counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from herd.core.chat import Conversation
from herd.core.scoring import SafetyJudge, Verdict
from herd.safety.data import conversation_of
from herd.safety.taxonomy import Policy

Check = Literal["prompt", "response", "both"]


@dataclass
class FilterConfig:
    """How rows are judged."""

    check: Check = "both"
    """Classify the prompt, the response, or both (rows without a response skip that check)."""
    fail_closed: bool = True
    """A row whose classification failed is dropped (True) or kept (False); counted either way."""
    batch_size: int = 64
    """Conversations per classify() call."""


@dataclass
class FilterResult:
    kept: Any
    """Rows kept, in input order (a Dataset when a Dataset came in)."""
    dropped: list[dict]
    """Rows dropped, each with a ``safety_reason`` field added."""
    counts: dict
    """``total``, ``kept``, ``dropped``, ``unsafe_prompt``, ``unsafe_response``, ``errors``,
    ``by_category`` (code -> dropped rows naming it)."""
    verdicts: list[dict] = field(default_factory=list)
    """Per input row: ``{"prompt": Verdict | None, "response": Verdict | None}``."""


def _split_row(row: dict, index: int) -> tuple[Conversation | None, Conversation | None]:
    """``(prompt conversation, response conversation or None)`` of a row."""
    msgs = row.get("messages", row.get("conversation"))
    if msgs is None:
        if not isinstance(row.get("prompt"), str):
            raise ValueError(f"row {index}: needs 'messages', 'conversation' or a string 'prompt'")
        response = row.get("response")
        if response is not None and not isinstance(response, str):
            raise ValueError(f"row {index}: 'response' must be a string")
        msgs = conversation_of(row["prompt"], response)
    if not isinstance(msgs, list) or not msgs:
        raise ValueError(f"row {index}: conversation must be a non-empty list of messages")
    last_user = max((i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "user"), default=None)
    prompt = msgs[: last_user + 1] if last_user is not None else None
    response = msgs if isinstance(msgs[-1], dict) and msgs[-1].get("role") == "assistant" else None
    return prompt, response


def _classify(classifier: SafetyJudge, convs: list[Conversation], batch: int) -> list[Verdict]:
    out: list[Verdict] = []
    for start in range(0, len(convs), batch):
        out.extend(classifier.classify(convs[start:start + batch]))
    return out


def _judge(verdict: Verdict | None, policy: Policy | None, fail_closed: bool) -> tuple[bool, list[str]]:
    """(drop?, categories) for one verdict under the policy's active categories."""
    if verdict is None:
        return False, []
    if verdict.error:
        return fail_closed, []
    if verdict.safe:
        return False, []
    cats = list(verdict.categories)
    if policy is not None and cats:
        cats = [c for c in cats if c in policy.active_codes]
        if not cats:  # every flagged category is outside this policy
            return False, []
    return True, cats


def filter_dataset(ds, classifier: SafetyJudge, policy: Policy | None = None, config: FilterConfig | None = None) -> FilterResult:
    """Split ``ds`` into kept and dropped rows by ``classifier``'s verdicts.

    ``policy`` (optional) narrows what counts: an unsafe verdict whose categories all fall outside
    the policy's active categories keeps the row (a verdict without categories still drops it).
    """
    cfg = config or FilterConfig()
    rows = [dict(r) for r in ds]
    parts = [_split_row(r, i) for i, r in enumerate(rows)]
    jobs: dict[str, list[tuple[int, Conversation]]] = {"prompt": [], "response": []}
    for i, (p, r) in enumerate(parts):
        if cfg.check in ("prompt", "both") and p is not None:
            jobs["prompt"].append((i, p))
        if cfg.check in ("response", "both") and r is not None:
            jobs["response"].append((i, r))
    verdicts: list[dict] = [{"prompt": None, "response": None} for _ in rows]
    for kind, items in jobs.items():
        for (i, _), v in zip(items, _classify(classifier, [c for _, c in items], cfg.batch_size)):
            verdicts[i][kind] = v
    kept_idx, dropped, counts = [], [], Counter()
    by_category: Counter = Counter()
    for i, row in enumerate(rows):
        reasons = []
        for kind in ("prompt", "response"):
            v = verdicts[i][kind]
            if v is not None and v.error:
                counts["errors"] += 1
            drop, cats = _judge(v, policy, cfg.fail_closed)
            if drop:
                counts[f"unsafe_{kind}"] += 1
                by_category.update(cats)
                reasons.append(f"{kind} error: {v.error}" if v.error else f"unsafe {kind}" + (f" ({','.join(cats)})" if cats else ""))
        if reasons:
            dropped.append(dict(row, safety_reason="; ".join(reasons)))
        else:
            kept_idx.append(i)
    summary = {
        "total": len(rows), "kept": len(kept_idx), "dropped": len(dropped),
        "unsafe_prompt": counts["unsafe_prompt"], "unsafe_response": counts["unsafe_response"],
        "errors": counts["errors"], "by_category": dict(sorted(by_category.items())),
    }
    kept = ds.select(kept_idx) if hasattr(ds, "select") else [rows[i] for i in kept_idx]
    return FilterResult(kept, dropped, summary, verdicts)
