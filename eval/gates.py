"""Regression gates: stop a round that made a metric worse than allowed.

A gate either bounds the change against the previous round (``max_increase`` / ``max_decrease``,
e.g. "VR may not rise by more than 2 points") or the value itself (``min`` / ``max``). The result
is a list of human-readable failures; empty means the round passes. A gate on a metric this
evaluation did not compute is itself a failure: a silently skipped gate looks like a pass.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from herd.eval.config import Gate

#: Float slack so that 0.12 - 0.10 (= 0.0199999...) is not judged against 0.02 by rounding noise.
_EPS = 1e-12


def _number(metrics: Mapping, key: str) -> float | None:
    value = metrics.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def check_gates(current: Mapping, previous: Mapping | None, gates: Sequence[Gate]) -> list[str]:
    """Check every gate; relative bounds are skipped (not failed) when there is no previous round."""
    failures: list[str] = []
    for gate in gates:
        value = _number(current, gate.metric)
        if value is None:
            failures.append(f"{gate.metric}: gated metric is missing from this evaluation")
            continue
        if gate.min is not None and value < gate.min:
            failures.append(f"{gate.metric} = {value:.4g} is below the floor {gate.min:g}")
        if gate.max is not None and value > gate.max:
            failures.append(f"{gate.metric} = {value:.4g} is above the ceiling {gate.max:g}")
        before = _number(previous, gate.metric) if previous is not None else None
        if before is None:
            continue
        change = value - before
        if gate.max_increase is not None and change > gate.max_increase + _EPS:
            failures.append(
                f"{gate.metric} rose by {change:.4g} ({before:.4g} -> {value:.4g}), "
                f"more than the allowed {gate.max_increase:g}"
            )
        if gate.max_decrease is not None and -change > gate.max_decrease + _EPS:
            failures.append(
                f"{gate.metric} fell by {-change:.4g} ({before:.4g} -> {value:.4g}), "
                f"more than the allowed {gate.max_decrease:g}"
            )
    return failures
