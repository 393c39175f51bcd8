"""Per-round evaluation: reward, win rate, verifier accuracy, safety VR/FRR, length drift, report.

The round loop calls :func:`run_eval` once per round and :func:`write_report` over the history.
This package imports only ``herd.core``: the reward model, verifier, guard and refusal detector
arrive as objects fitting the protocols of :mod:`herd.core.scoring`.

Names are resolved lazily (PEP 562) so that ``herd --help``, which imports the config dataclasses,
does not pay for torch and matplotlib.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "EvalConfig": "herd.eval.config",
    "Gate": "herd.eval.config",
    "check_gates": "herd.eval.gates",
    "read_metrics": "herd.eval.run",
    "run_eval": "herd.eval.run",
    "write_report": "herd.eval.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'herd.eval' has no attribute {name!r}")
