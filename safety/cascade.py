"""CascadeClassifier: a cheap guard settles the clear cases, a strong guard the uncertain ones.

With the embedding guard in front, a generative guard only runs on the band where the cheap
scores are uncertain (``low < p_unsafe < high``) or where the cheap guard failed — most traffic is
clearly safe or clearly unsafe, so most of the generative guard's cost is saved.
"""

from __future__ import annotations

from typing import Sequence

from herd.core.chat import Conversation
from herd.core.scoring import Verdict
from herd.safety.base import SafetyClassifier


class CascadeClassifier(SafetyClassifier):
    def __init__(self, fast: SafetyClassifier, slow: SafetyClassifier, low: float = 0.1, high: float = 0.9):
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"cascade band needs 0 <= low <= high <= 1, got {low}, {high}")
        self.fast, self.slow, self.low, self.high = fast, slow, low, high
        self.threshold = getattr(slow, "threshold", 0.5)
        self.fail_closed = getattr(slow, "fail_closed", True)
        self.escalated = 0
        """How many conversations went to the slow guard so far."""
        self.total = 0

    def classify(self, conversations: Sequence[Conversation]) -> list[Verdict]:
        verdicts = list(self.fast.classify(conversations))
        uncertain = [i for i, v in enumerate(verdicts) if v.error or self.low < v.p_unsafe < self.high]
        if uncertain:
            for i, v in zip(uncertain, self.slow.classify([conversations[i] for i in uncertain])):
                verdicts[i] = v
        self.escalated += len(uncertain)
        self.total += len(verdicts)
        return verdicts

    def close(self) -> None:
        self.fast.close()
        self.slow.close()
