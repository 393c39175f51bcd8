"""What every herd safety classifier is: conversations in, one :class:`Verdict` per conversation out.

``Verdict`` is herd.core.scoring's (re-exported from ``herd.safety``) so the loop, rejection
sampling and eval can take any classifier through the ``SafetyJudge`` protocol without importing
this stage. Failures are per conversation and *fail closed* by default: a conversation the guard
could not classify comes back unsafe with ``error`` set, because silently passing unchecked data
into training is the worse mistake.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from herd.core.chat import Conversation
from herd.core.scoring import Verdict


def error_verdict(message: str, fail_closed: bool = True) -> Verdict:
    """The verdict for a conversation that could not be classified."""
    if fail_closed:
        return Verdict(safe=False, categories=[], p_unsafe=1.0, error=message)
    return Verdict(safe=True, categories=[], p_unsafe=0.0, error=message)


class SafetyClassifier(ABC):
    """Base of the guards. Subclasses implement :meth:`classify`; ``threshold`` turns P(unsafe)
    into a verdict and ``fail_closed`` decides what a failed classification means."""

    threshold: float = 0.5
    fail_closed: bool = True

    @abstractmethod
    def classify(self, conversations: Sequence[Conversation]) -> list[Verdict]:
        """Classify the last turn of each conversation (user turn: prompt classification;
        assistant turn: response classification)."""

    def classify_one(self, conversation: Conversation) -> Verdict:
        return self.classify([conversation])[0]

    def close(self) -> None:
        """Release engines or memory (no-op for in-process classifiers)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
