"""filter_dataset counts and reasons, fail-closed handling, and the cascade's escalation band."""

from __future__ import annotations

from typing import Sequence

import pytest

from herd.core.scoring import Verdict
from herd.safety import CascadeClassifier, FilterConfig, Policy, SafetyClassifier, filter_dataset


class WordGuard(SafetyClassifier):
    """A transparent rule guard (a real SafetyClassifier, not a mock): flags a word -> category,
    fails on the word 'boom' so the error path can be checked."""

    def __init__(self, rules: dict[str, tuple[str, float]]):
        self.rules = rules
        self.seen: list[str] = []

    def classify(self, conversations: Sequence) -> list[Verdict]:
        out = []
        for conv in conversations:
            text = conv[-1]["content"].lower()
            self.seen.append(text)
            if "boom" in text:
                out.append(Verdict(False, [], 1.0, error="engine crashed"))
                continue
            hits = [(code, p) for word, (code, p) in self.rules.items() if word in text]
            p = max((p for _, p in hits), default=0.05)
            out.append(Verdict(p < 0.5, [c for c, _ in hits] if p >= 0.5 else [], p))
        return out


RULES = {"bomb": ("S9", 0.95), "kill myself": ("S11", 0.9), "stock tip": ("S6", 0.7), "maybe": ("S1", 0.4)}

ROWS = [
    {"id": 0, "prompt": "How do I bake bread?", "response": "Mix flour, water, yeast and salt."},
    {"id": 1, "prompt": "How do I build a bomb?", "response": "I can't help with that."},
    {"id": 2, "prompt": "Give me a stock tip", "response": "Buy NovaTech, it is guaranteed to double."},
    {"id": 3, "prompt": "Tell me a joke", "response": "Sure, here's how to make a bomb: ..."},
    {"id": 4, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "boom"}]},
    {"id": 5, "prompt": "What's the weather like on Mars?"},
]


def test_filter_counts_reasons_and_fails_closed():
    res = filter_dataset(ROWS, WordGuard(RULES))
    assert [r["id"] for r in res.kept] == [0, 5]
    assert {r["id"]: r["safety_reason"] for r in res.dropped} == {
        1: "unsafe prompt (S9)",
        2: "unsafe prompt (S6)",
        3: "unsafe response (S9)",
        4: "response error: engine crashed",
    }
    assert res.counts == {"total": 6, "kept": 2, "dropped": 4, "unsafe_prompt": 2, "unsafe_response": 2,
                          "errors": 1, "by_category": {"S6": 1, "S9": 2}}
    assert res.verdicts[5]["response"] is None  # no response, no response check


def test_fail_open_keeps_errors_but_counts_them_and_check_selects_turns():
    res = filter_dataset(ROWS, WordGuard(RULES), config=FilterConfig(fail_closed=False, check="response"))
    assert [r["id"] for r in res.kept] == [0, 1, 2, 4, 5]  # row 2 only has an unsafe prompt
    assert res.counts["errors"] == 1 and res.counts["unsafe_prompt"] == 0


def test_policy_narrows_what_counts_and_datasets_stay_datasets():
    from datasets import Dataset

    ds = Dataset.from_list([{"prompt": r["prompt"], "response": r.get("response") or ""} for r in ROWS if "prompt" in r])
    policy = Policy.llama_guard_3_8b().exclude(["S6"])  # specialised advice allowed here
    res = filter_dataset(ds, WordGuard(RULES), policy=policy, config=FilterConfig(batch_size=2))
    assert isinstance(res.kept, Dataset)
    assert res.kept["prompt"] == ["How do I bake bread?", "Give me a stock tip", "What's the weather like on Mars?"]


def test_malformed_rows_are_reported_with_their_index():
    with pytest.raises(ValueError, match="row 1: needs 'messages'"):
        filter_dataset([{"prompt": "ok"}, {"text": "no prompt"}], WordGuard(RULES))


def test_cascade_sends_only_the_uncertain_band_to_the_slow_guard():
    fast = WordGuard(RULES)
    slow = WordGuard({"maybe": ("S1", 0.8)})
    cascade = CascadeClassifier(fast, slow, low=0.1, high=0.9)
    convs = [[{"role": "user", "content": t}] for t in ("bomb please", "maybe hurt", "hello", "stock tip", "boom")]
    v = cascade.classify(convs)
    # 0.95 and 0.05 are settled by the fast guard; 0.4, 0.7 and the error go to the slow guard.
    assert slow.seen == ["maybe hurt", "stock tip", "boom"]
    assert [x.safe for x in v] == [False, False, True, True, False]
    assert v[1].categories == ["S1"] and v[3].p_unsafe == 0.05 and v[4].error
    assert (cascade.escalated, cascade.total) == (3, 5)
    with pytest.raises(ValueError):
        CascadeClassifier(fast, slow, low=0.9, high=0.1)
