"""A small, dependency-free language check for "is this response in the expected language?".

Two signals, cheapest first:

1. **Script.** Letters are counted per Unicode script block. A dominant non-Latin script names
   the language directly: Cyrillic -> ru (uk when Ukrainian-only letters appear), Greek -> el,
   Arabic -> ar, Hebrew -> he, Devanagari -> hi, Thai -> th, Hangul -> ko, Kana -> ja,
   Han without kana -> zh.
2. **Stop words** for Latin-script text: the share of words that are frequent function words of
   en, de, fr, es, it, pt, nl; the highest share wins when it reaches ``MIN_STOPWORD_SHARE``.

Known limits (why this is a filter for gross mismatches, not a classifier): languages sharing a
script are conflated (Persian/Urdu read as ar, Bulgarian/Serbian as ru, Marathi/Nepali as hi);
Latin-script languages outside the seven above come out "und" (undecidable) and are kept; very
short texts (< ``min_letters`` letters) are "und"; code-heavy answers should have code stripped
first (the cleaning rule does); mixed-language answers go to whichever language dominates.
Portuguese/Spanish and Dutch/German share many function words, so the lists below keep mostly
the words that tell them apart.
"""

from __future__ import annotations

import re
from collections import Counter

#: Below this share of stop words a Latin-script text is undecidable.
MIN_STOPWORD_SHARE = 0.08

STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the and is are was were you your that this with have has not what which would there they "
        "their be been will can of to it for on as but or if at from by about how i me my we our "
        "do does an so just all some any than then these those".split()
    ),
    "de": frozenset(
        "der die das und ist nicht ich sie es ein eine einen dem den mit auf für sich auch wie "
        "aber oder wenn wird sind war haben hat kann noch nur schon sehr über zum zur bei aus "
        "dass wir ihr mich dich uns".split()
    ),
    "fr": frozenset(
        "le la les et est une des du que qui pas pour dans sur avec vous nous ce cette sont "
        "mais ou au aux par plus ne se il elle ils sont être avoir fait comme très aussi".split()
    ),
    "es": frozenset(
        "el la los las y es una que del por con para pero como más muy este esta son está "
        "sus al lo le se su también hay puede ser tiene cuando porque sí yo usted".split()
    ),
    "it": frozenset(
        "il lo la gli le e è una che di del della per con non sono come più anche questo "
        "questa ma nel nella alla al si ci sei ho hai ha essere molto perché".split()
    ),
    "pt": frozenset(
        "o os as e é uma um que do da dos das por com para não mais como muito este esta são "
        "está seu sua também você isso ao em no na pode ser tem quando porque".split()
    ),
    "nl": frozenset(
        "de het een en is van dat niet ik je op te zijn met voor maar ook als er dit deze "
        "wat wordt heeft hebben kan nog wel naar bij uit om zo jij jullie".split()
    ),
}

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# (name, ranges) per script; Latin includes Latin-1 Supplement and Latin Extended A/B letters.
_SCRIPTS: list[tuple[str, tuple[tuple[int, int], ...]]] = [
    ("latin", ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F))),
    ("cyrillic", ((0x400, 0x4FF),)),
    ("greek", ((0x370, 0x3FF),)),
    ("arabic", ((0x600, 0x6FF), (0x750, 0x77F))),
    ("hebrew", ((0x590, 0x5FF),)),
    ("devanagari", ((0x900, 0x97F),)),
    ("thai", ((0xE00, 0xE7F),)),
    ("hangul", ((0xAC00, 0xD7AF), (0x1100, 0x11FF))),
    ("kana", ((0x3040, 0x30FF),)),
    ("han", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF))),
]
_SCRIPT_LANG = {"greek": "el", "arabic": "ar", "hebrew": "he", "devanagari": "hi", "thai": "th", "hangul": "ko"}
_UKRAINIAN_ONLY = set("іїєґІЇЄҐ")


def _script_of(ch: str) -> str | None:
    cp = ord(ch)
    for name, ranges in _SCRIPTS:
        if any(lo <= cp <= hi for lo, hi in ranges):
            return name
    return None


def script_counts(text: str) -> Counter:
    """Letters per script (characters outside the known blocks are ignored)."""
    counts: Counter = Counter()
    for ch in text:
        if ch.isalpha():
            script = _script_of(ch)
            if script:
                counts[script] += 1
    return counts


def _latin_language(text: str) -> str:
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return "und"
    shares = {lang: sum(w in sw for w in words) / len(words) for lang, sw in STOPWORDS.items()}
    best = max(shares, key=lambda k: shares[k])
    return best if shares[best] >= MIN_STOPWORD_SHARE else "und"


def detect_language(text: str, min_letters: int = 20) -> str:
    """ISO 639-1 code of ``text``'s dominant language, or "und" when it cannot tell."""
    counts = script_counts(text)
    total = sum(counts.values())
    if total < min_letters:
        return "und"
    script, _ = counts.most_common(1)[0]
    if script == "latin":
        return _latin_language(text)
    if script in ("kana", "han"):
        # Japanese mixes kana with kanji; Chinese has no kana.
        return "ja" if counts["kana"] >= 0.1 * (counts["kana"] + counts["han"]) else "zh"
    if script == "cyrillic":
        return "uk" if any(ch in _UKRAINIAN_ONLY for ch in text) else "ru"
    return _SCRIPT_LANG[script]
