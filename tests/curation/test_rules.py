"""Each cleaning rule on crafted rows, and the count chain across rules."""

from __future__ import annotations

import pytest

from herd.sft.curation.config import (
    ApologyRule, EmptyRule, ExpressivenessRule, LanguageRule, RulesConfig, TruncationRule,
)
from herd.sft.curation.rules import (
    apply_rules, balance_apologies, count_emojis, count_exclamations, is_empty,
    is_overexpressive, is_truncated, is_wrong_language,
)
from tests.curation.helpers import chat

GOOD = "Paris is the capital of France, and it has been for a very long time."


def test_empty_rule_drops_blank_or_missing_replies_in_any_turn():
    rule = EmptyRule()
    assert is_empty(chat("hi", "   \n"), rule)
    assert is_empty(chat("hi", GOOD, ""), rule)  # a later empty turn
    assert is_empty({"messages": [{"role": "user", "content": "hi"}]}, rule)  # no reply at all
    assert not is_empty(chat("hi", "ok"), rule)
    assert is_empty(chat("hi", "ok"), EmptyRule(min_chars=3))


def test_truncation_uses_sampler_markers_then_code_fences():
    rule = TruncationRule()
    assert is_truncated(chat("q", GOOD, finish_reason="length"), rule)
    assert not is_truncated(chat("q", GOOD, finish_reason="stop"), rule)
    assert is_truncated(chat("q", GOOD, truncated=True), rule)
    assert is_truncated(chat("q", "Here:\n```python\ndef f(x):\n    return"), rule)
    assert not is_truncated(chat("q", "Here:\n```python\nx = 1\n```"), rule)
    # Punctuation is only required when asked for: lists and code end without it.
    assert not is_truncated(chat("q", "The steps are: open the"), rule)
    assert is_truncated(chat("q", "The steps are: open the"), TruncationRule(require_terminal_punctuation=True))
    assert not is_truncated(chat("q", "Done."), TruncationRule(require_terminal_punctuation=True))


def test_language_rule_drops_only_confident_mismatches():
    rule = LanguageRule(expected="en")
    german = "Die Hauptstadt von Frankreich ist Paris, und das ist schon sehr lange so."
    russian = "Столица Франции — Париж, и так было уже очень давно."
    assert is_wrong_language(chat("q", german), rule)
    assert is_wrong_language(chat("q", russian), rule)
    assert not is_wrong_language(chat("q", GOOD), rule)
    assert not is_wrong_language(chat("q", "Oui."), rule)  # too short to tell: kept
    # Code is stripped before detection: an English answer with German identifiers stays.
    code = "Use this function, and it will do what you want:\n```\ndef der_die_das(und, ist):\n    return nicht\n```"
    assert not is_wrong_language(chat("q", code), rule)
    assert not is_wrong_language(chat("q", german), LanguageRule(expected="de"))
    assert not is_wrong_language(chat("q", german), LanguageRule(expected=None))


def test_emoji_and_exclamation_counts():
    assert count_emojis("Great job 🎉🎉 see you ☀️") == 3
    assert count_emojis("family: 👨\u200d👩\u200d👧") == 1  # one ZWJ sequence, one emoji
    assert count_exclamations("Wow! Amazing!! if (a != b) { run(`!x`) }") == 3
    assert count_exclamations("```bash\n!ls\necho hi!\n```\nDone!") == 1
    rule = ExpressivenessRule(max_emojis=2, max_exclamations=2)
    assert is_overexpressive(chat("q", "Yay!!! So fun."), rule)
    assert is_overexpressive(chat("q", "ok 😀😀😀"), rule)
    assert not is_overexpressive(chat("q", "Yay!! 😀😀"), rule)
    assert is_overexpressive(chat("q", "fine.", "Wow!!!"), rule)  # any assistant turn


def test_apology_balance_keeps_exactly_the_target_share():
    apologetic = [chat(f"q{i}", f"I’m sorry, but I can't help with request {i}.") for i in range(30)]
    apologetic += [chat(f"r{i}", f"My apologies, number {i} is not possible.") for i in range(10)]
    plain = [chat(f"p{i}", f"Sure, here is answer {i}.") for i in range(60)]
    rows = apologetic + plain
    kept = balance_apologies(rows, ApologyRule(target_share=0.2))
    # k = floor(0.2 * 60 / 0.8) = 15 apologetic rows stay next to all 60 plain ones.
    n_apol = sum(1 for r in kept if r in apologetic)
    assert n_apol == 15 and sum(1 for r in kept if r in plain) == 60
    assert n_apol / len(kept) <= 0.2
    # Content-keyed choice: reordering the input keeps the same rows.
    again = balance_apologies(list(reversed(rows)), ApologyRule(target_share=0.2))
    assert sorted(map(str, again)) == sorted(map(str, kept))
    # Under the target nothing is dropped; phrases must be whole words ("unsorry" is not one).
    assert balance_apologies(rows, ApologyRule(target_share=0.5)) == rows
    assert balance_apologies([chat("q", "I regretfully decline")] * 3, ApologyRule(target_share=0.0)) != []
    assert balance_apologies([chat("q", "I apologize.")] * 3, ApologyRule(target_share=0.0)) == []


def test_rules_run_in_order_and_counts_chain():
    rows = [
        chat("a", ""),                                 # empty
        chat("b", GOOD, finish_reason="length"),      # truncated
        chat("c", "Die Antwort ist nicht so einfach, aber wir haben sie."),  # wrong language
        chat("d", "Amazing!!!! 🎉"),                    # expressive
        chat("e", "I'm sorry, I cannot do that for you at all."),
        chat("f", "I apologize, that was my mistake entirely."),
        *[chat(f"g{i}", f"{GOOD} Variant {i}.") for i in range(8)],
    ]
    cfg = RulesConfig(language=LanguageRule(expected="en"), apology=ApologyRule(target_share=0.1))
    kept, counts = apply_rules(rows, cfg)
    got = [(c.rule, c.rows_in, c.rows_out) for c in counts]
    assert got == [
        ("empty", 14, 13),
        ("truncated", 13, 12),
        ("wrong_language", 12, 11),
        ("excessive_emoji_or_exclamation", 11, 10),
        ("apology_balance", 10, 8),  # floor(0.1 * 8 / 0.9) = 0 apologetic rows may stay
    ]
    assert kept == rows[6:]


@pytest.mark.parametrize("enabled", [False])
def test_disabled_rules_do_not_run_or_count(enabled):
    cfg = RulesConfig(
        empty=EmptyRule(enabled=enabled), truncated=TruncationRule(enabled=enabled),
        expressive=ExpressivenessRule(enabled=enabled), apology=ApologyRule(enabled=enabled),
    )
    rows = [chat("a", ""), chat("b", "Wow!!!!")]
    kept, counts = apply_rules(rows, cfg)
    assert kept == rows and counts == []
