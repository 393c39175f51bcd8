"""Contracts between the stages that judge text: reward models, verifiers, guards, refusals.

Rejection sampling, evaluation and curation all score conversations, and they must score them the
same way (one verifier, two uses). A stage never imports another stage, so the shared shapes live
here: a stage accepts any object that fits these protocols, and the round runner (``herd.loop``)
builds the concrete ones (a reward model from ``herd.core.reward_scoring``, a guard from
``herd.safety``, ...) and hands them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

from herd.core.chat import Conversation


class Scorer(Protocol):
    """Anything that maps conversations to one float each (higher = better)."""

    name: str

    def score(
        self, conversations: Sequence[Conversation], metadata: Sequence[Mapping] | None = None
    ) -> list[float]:
        """``metadata[i]`` carries what scoring needs beyond the text (e.g. a verifier's reference
        answer); scorers that need none ignore it."""
        ...


@dataclass
class Verdict:
    """A safety classification: the Llama Guard verdict, its categories and P(unsafe)."""

    safe: bool
    categories: list[str] = field(default_factory=list)
    p_unsafe: float = 0.0
    error: str | None = None
    """Set when classification failed; callers fail closed (treat as unsafe) by default."""


class SafetyJudge(Protocol):
    """A safety classifier (herd.safety's guards fit it)."""

    def classify(self, conversations: Sequence[Conversation]) -> list[Verdict]:
        """Classify the last turn of each conversation: a user turn (prompt classification) or an
        assistant turn (response classification)."""
        ...


@dataclass
class RefusalVerdict:
    refusal: bool
    p_refusal: float


class RefusalJudge(Protocol):
    """Labels (prompt, response) pairs as refusal (partial refusals count) or compliance."""

    def detect(self, prompts: Sequence[str], responses: Sequence[str]) -> list[RefusalVerdict]:
        ...
