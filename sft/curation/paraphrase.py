"""Synthetic paraphrases of chat rows, for checking a dedup threshold and for the benchmark.

A rejection-sampled SFT set is full of near-duplicates of the kind this makes: the same answer
with a different opener, a synonym here and there, contractions expanded, punctuation changed.
The edits are seeded and deterministic, so a test can plant duplicates it knows about. They are
surface edits, not meaning-preserving rewrites by a model: a dedup that catches these catches
the easy half of real paraphrases; see docs/benchmarks/curation.md for measured similarities.
"""

from __future__ import annotations

import random
import re

SYNONYMS = {
    "help": "assist", "big": "large", "small": "little", "quick": "fast", "maybe": "perhaps",
    "think": "believe", "use": "utilize", "show": "demonstrate", "start": "begin", "end": "finish",
    "get": "obtain", "buy": "purchase", "need": "require", "want": "wish", "answer": "reply",
    "idea": "notion", "good": "fine", "bad": "poor", "hard": "difficult", "easy": "simple",
    "people": "folks", "really": "truly", "also": "additionally", "about": "regarding",
    "tell": "inform", "find": "locate", "make": "create", "often": "frequently", "kids": "children",
}
CONTRACTIONS = {
    "I'm": "I am", "don't": "do not", "it's": "it is", "can't": "cannot", "you're": "you are",
    "that's": "that is", "isn't": "is not", "won't": "will not", "I'll": "I will", "I've": "I have",
    "doesn't": "does not", "there's": "there is", "what's": "what is", "let's": "let us",
}
OPENERS = ["Sure. ", "Well, ", "Okay, ", "Alright. ", "Good question. ", "Hmm, ", "So, "]
_WORD = re.compile(r"[A-Za-z']+")


def _swap_words(text: str, rng: random.Random, p: float) -> str:
    def repl(m: re.Match) -> str:
        w = m.group(0)
        if rng.random() >= p:
            return w
        low = w.lower()
        new = CONTRACTIONS.get(w) or SYNONYMS.get(low)
        if new is None:
            return w
        return new[0].upper() + new[1:] if w[0].isupper() else new
    return _WORD.sub(repl, text)


def paraphrase_text(text: str, rng: random.Random, p: float = 0.5, opener: bool = False) -> str:
    """Swap synonyms/contractions with probability ``p`` each, perhaps prepend an opener, and
    vary the final punctuation."""
    out = _swap_words(text, rng, p)
    if opener and out:
        out = rng.choice(OPENERS) + out[0].lower() + out[1:]
    if out.endswith(".") and rng.random() < 0.5:
        out = out[:-1] + "!" if rng.random() < 0.3 else out[:-1]
    return out


def paraphrase_messages(messages: list[dict], seed: int, p: float = 0.5) -> list[dict]:
    """A paraphrase of a whole dialog: every turn edited, assistant turns may get an opener."""
    rng = random.Random(seed)
    return [
        {"role": m["role"], "content": paraphrase_text(m["content"], rng, p, opener=m["role"] == "assistant")}
        for m in messages
    ]
