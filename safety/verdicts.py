"""Reading and writing the guard's verdict text.

Real guards answer ``safe`` or ``unsafe`` + newline + comma-separated codes, usually after the
``\\n\\n`` they emit first (observed: ``'\\n\\nsafe'``, ``'\\n\\nunsafe\\nS11'``). Parsing is
tolerant of whitespace, case, separators and trailing text, because a fine-tuned or small guard
drifts from the exact shape; what cannot be read is reported as such (``safe is None``), never
guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

_CODE = re.compile(r"[A-Za-z]+\d+")


@dataclass
class ParsedVerdict:
    safe: bool | None
    """True/False, or None when the first line says neither (junk output)."""
    categories: list[str] = field(default_factory=list)


def format_verdict(categories: Iterable[str] = ()) -> str:
    """``'safe'`` or ``'unsafe\\nS1,S10'``: the generation a guard is trained to produce."""
    codes = list(categories)
    return "unsafe\n" + ",".join(codes) if codes else "safe"


def parse_verdict(text: str, codes: Iterable[str] | None = None) -> ParsedVerdict:
    """Parse a guard's output.

    ``codes`` (the policy's codes) filters category tokens and maps their case; without it any
    ``letters+digits`` token counts. Categories are read from the rest of the first line and the
    lines after it, in order, without duplicates.
    """
    stripped = text.strip()
    if not stripped:
        return ParsedVerdict(None)
    first, _, rest = stripped.partition("\n")
    words = first.strip().split(None, 1)
    head = words[0].lower().strip(".:,;") if words else ""
    if head not in ("safe", "unsafe"):
        return ParsedVerdict(None)
    if head == "safe":
        return ParsedVerdict(True)
    tail = (words[1] if len(words) > 1 else "") + "\n" + rest
    known = {c.upper(): c for c in codes} if codes is not None else None
    found: list[str] = []
    for token in _CODE.findall(tail):
        code = known.get(token.upper()) if known is not None else token.upper()
        if code and code not in found:
            found.append(code)
    return ParsedVerdict(False, found)
