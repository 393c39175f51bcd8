"""Per-round evaluation: reward, win rate, verifier accuracy, safety VR/FRR, length drift, report.

The round loop calls :func:`run_eval` once per round and :func:`write_report` over the history.
This package imports only ``herd.core``: the reward model, verifier, guard and refusal detector
arrive as objects fitting the protocols of :mod:`herd.core.scoring`.
"""

from herd.eval.config import EvalConfig, Gate
from herd.eval.gates import check_gates
from herd.eval.report import write_report
from herd.eval.run import read_metrics, run_eval

__all__ = ["EvalConfig", "Gate", "check_gates", "read_metrics", "run_eval", "write_report"]
