"""Build the scorers a sampling config names (reward models and verifiers live in herd.core).

The guard is not built here: it comes from herd.safety, another stage, so the round loop and the
``herd sample`` command (both in herd.loop) build it and hand it in.
"""

from __future__ import annotations

from typing import Mapping

from herd.core.scoring import Scorer
from herd.rejection_sampling.config import ScorerSpec


def build_scorer(name: str, spec: ScorerSpec) -> Scorer:
    if spec.kind == "reward_model":
        from herd.core.reward_scoring import RewardModelScorer

        return RewardModelScorer(
            spec.model, batch_size=spec.batch_size, max_length=spec.max_length,
            sort_by_length=spec.sort_by_length, name=name,
        )
    if spec.kind == "number_match":
        from herd.core.verifiers import NumberMatchVerifier

        return NumberMatchVerifier()
    raise ValueError(f"scorers.{name}: unknown kind {spec.kind!r}")


def build_scorers(specs: Mapping[str, ScorerSpec]) -> dict[str, Scorer]:
    """Name -> scorer, in config order (the names key the scores on every output row)."""
    return {name: build_scorer(name, spec) for name, spec in specs.items()}
