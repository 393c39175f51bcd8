"""Standard benchmarks through EleutherAI's lm-evaluation-harness (optional extra ``herd[lm-eval]``).

The harness already implements hundreds of tasks with their published prompts and metrics; herd
only hands it a checkpoint directory and folds its results into the flat metrics.json schema as
``lm_eval/<task>/<metric>`` (``lm_eval/<task>/<metric>[<filter>]`` when the harness reports a
filter other than ``none``, e.g. GSM8K's ``strict-match``).

The package is not a core dependency (it pulls in many task dependencies); without it,
:func:`run_lm_eval` raises an ImportError that says how to install it.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from herd.eval.config import LMEvalSuite

INSTALL_HINT = "lm-eval suite needs the optional extra: pip install 'herd[lm-eval]' (lm-eval==0.4.13)"


def flatten_results(results: Mapping[str, Any]) -> dict[str, float]:
    """``simple_evaluate(...)["results"]`` -> flat ``lm_eval/<task>/<metric>`` floats.

    The harness keys metrics as ``"<metric>,<filter>"`` (``"acc,none"``, ``"acc_stderr,none"``);
    non-numeric entries (``alias``) and N/A stderrs are dropped.
    """
    out: dict[str, float] = {}
    for task in sorted(results):
        for key, value in results[task].items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
                continue
            metric, _, filt = key.partition(",")
            suffix = "" if filt in ("", "none") else f"[{filt}]"
            out[f"lm_eval/{task}/{metric}{suffix}"] = float(value)
    return out


def run_lm_eval(model_path: str, suite: LMEvalSuite, device: str | None = None) -> dict[str, float]:
    """Run the configured harness tasks on a local HF checkpoint with the harness's HF model."""
    try:
        import lm_eval
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = "bfloat16" if device.startswith("cuda") else "float32"
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_path},dtype={dtype}",
        tasks=list(suite.tasks),
        num_fewshot=suite.num_fewshot,
        batch_size=suite.batch_size,
        limit=suite.limit,
        device=device,
    )
    return flatten_results(results["results"])
