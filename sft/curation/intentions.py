"""Intention count: a dependency-free proxy for Instag difficulty (Lu et al., 2023).

Instag asks an LLM to tag each user query with its intentions; more distinct tags means a more
complex request, and Llama 3 §4.2.3 uses that count as a difficulty signal. Running a 70B tagger
is out of reach here, so this counts *request clauses* in the user turns instead:

* user text (code removed) is split into clauses at sentence ends, line breaks, list markers,
  semicolons, and at "and"/"then"/"also" when a request verb follows ("explain X and give an
  example" is two requests);
* a clause is a request when it ends in '?', opens with a question word or auxiliary
  (what/how/why/.../can/should/is), or opens (after politeness such as "please", "can you",
  "I want you to") with one of ``REQUEST_VERBS``;
* identical clauses (case and spacing folded) count once; every non-empty user turn counts at
  least one intention, because a message always asks for something.

Limits: statements that are implicit requests ("My code crashes.") count only through the
one-per-turn floor; intentions inside one clause ("compare A, B and C") count once; English only.
"""

from __future__ import annotations

import re

from herd.sft.curation.rows import strip_code, user_texts

REQUEST_VERBS = frozenset(
    "write explain list give tell describe summarize summarise translate compare create make find "
    "calculate compute show help suggest provide generate fix rewrite convert draft outline analyze "
    "analyse design implement solve recommend name define classify evaluate review edit improve "
    "plan prove derive estimate identify check count sort format shorten expand paraphrase answer "
    "debug optimize optimise build add remove rank predict argue discuss imagine compose".split()
)
QUESTION_OPENERS = frozenset(
    "what how why when where which who whom whose is are was were do does did can could should "
    "would will shall may might".split()
)
_POLITE = re.compile(
    r"^(?:please|kindly|now|also|then|and|so|ok(?:ay)?|(?:can|could|would|will) you(?: please)?|"
    r"i (?:want|need|would like) you to|i'd like you to|help me(?: to)?|let's|lets)\b[\s,]*",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"(?<=[.?!;])\s+|\n+|^\s*(?:\d+[.)]|[-*•])\s+", re.MULTILINE)
_VERB_JOIN = re.compile(
    r"\s*,?\s+(?:and|then|also|and then|and also)\s+(?=(?:" + "|".join(sorted(REQUEST_VERBS)) + r")\b)",
    re.IGNORECASE,
)


def _clauses(text: str) -> list[str]:
    parts: list[str] = []
    for sentence in _SPLIT.split(strip_code(text)):
        if sentence and sentence.strip():
            parts.extend(p.strip() for p in _VERB_JOIN.split(sentence) if p.strip())
    return parts


def is_request(clause: str) -> bool:
    """True for a question or an imperative request (see module docstring)."""
    if clause.rstrip().endswith("?"):
        return True
    words = clause.lower().split()
    if words and words[0].strip(",:") in QUESTION_OPENERS:
        return True
    stripped = clause
    for _ in range(3):  # "Please, can you help me write ..." peels several politeness layers
        new = _POLITE.sub("", stripped, count=1)
        if new == stripped:
            break
        stripped = new
    first = stripped.lower().split()[:1]
    return bool(first) and first[0].strip(",:") in REQUEST_VERBS


def _normalize(clause: str) -> str:
    return " ".join(clause.lower().split()).rstrip(".?!;")


def count_intentions(row: dict) -> int:
    """Distinct request clauses over all user turns, at least one per non-empty user turn."""
    total = 0
    for text in user_texts(row):
        if not text.strip():
            continue
        requests = {_normalize(c) for c in _clauses(text) if is_request(c)}
        total += max(1, len(requests))
    return total
