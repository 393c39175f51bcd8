"""`herd eval`: shipped recipes parse; the command runs on the tiny kit and reports gates by exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herd.core.config import ConfigError, load_config
from herd.eval.lm_eval_adapter import INSTALL_HINT, flatten_results, run_lm_eval
from herd.eval.config import LMEvalSuite
from herd.loop.cli import main
from herd.loop.eval_cli import EvalJobConfig

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes" / "eval").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_shipped_eval_recipes_parse(recipe):
    cfg = load_config(EvalJobConfig, recipe)
    assert cfg.model and cfg.eval.output_dir


def test_unknown_key_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\neval:\n  verifier:\n    pass_at: [1]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: eval.verifier.pass_at: unknown key"):
        load_config(EvalJobConfig, bad)


def test_herd_eval_command_on_tiny_kit(tiny_kit, tmp_path, capsys):
    out = tmp_path / "eval"
    args = [
        "eval", "--config", str(REPO / "recipes" / "eval" / "tiny.yaml"),
        f"model={tiny_kit['policy']}", f"baseline={tiny_kit['policy']}", f"reward_model={tiny_kit['reward']}",
        f"eval.output_dir={out}", f"report_dir={tmp_path / 'report'}", "round=0",
        "eval.generation.backend=hf", "eval.generation.max_new_tokens=4",
        "eval.reward.limit=2", "eval.verifier.limit=2", "eval.verifier.num_samples=4",
        "eval.safety.limit_unsafe=3", "eval.safety.limit_safe=3",
    ]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["round"] == 0 and metrics["tie_rate"] == 1.0 and metrics["reward_n"] == 2
    # the shipped embedding guard and refusal detector (herd.safety) judged the XSTest responses
    assert metrics["violation_rate_n"] == 3 and metrics["false_refusal_rate_n"] == 3
    assert metrics["violation_rate"] in (0.0, 1 / 3, 2 / 3, 1.0) and metrics["violation_errors"] == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all(isinstance(r["violation"], bool) and 0.0 <= r["p_unsafe"] <= 1.0 for r in rows if r["set"] == "unsafe")
    assert all(isinstance(r["refusal"], bool) for r in rows if r["set"] in ("safe", "unsafe"))
    assert "eval: reward_mean=" in capsys.readouterr().out
    history = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert [m["round"] for m in history] == [0]
    # a failing gate makes the command exit 1 and say why
    assert main(args + ["eval.gates=[{metric: reward_mean, min: 1000.0}]"]) == 1
    assert "gate failed: reward_mean" in capsys.readouterr().out
    # a missing model directory is a clear error, not a traceback
    assert main(args + [f"model={tmp_path / 'nope'}"]) == 2
    assert "model:" in capsys.readouterr().err


def test_lm_eval_results_flatten():
    # The shape lm-eval 0.4 returns in simple_evaluate(...)["results"].
    results = {
        "hellaswag": {"alias": "hellaswag", "acc,none": 0.25, "acc_stderr,none": 0.04, "acc_norm,none": 0.3},
        "gsm8k": {"exact_match,strict-match": 0.1, "exact_match_stderr,strict-match": "N/A"},
    }
    assert flatten_results(results) == {
        "lm_eval/gsm8k/exact_match[strict-match]": 0.1,
        "lm_eval/hellaswag/acc": 0.25,
        "lm_eval/hellaswag/acc_norm": 0.3,
        "lm_eval/hellaswag/acc_stderr": 0.04,
    }


def test_lm_eval_adapter_without_the_extra(tiny_kit):
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"herd\[lm-eval\]"):
            run_lm_eval(str(tiny_kit["policy"]), LMEvalSuite(enabled=True))
        assert "pip install" in INSTALL_HINT
        return
    pytest.skip("lm-eval is installed: covered by test_lm_eval_on_tiny_model")


@pytest.mark.slow
def test_lm_eval_on_tiny_model(tiny_kit):
    """Needs the optional extra (not installed on the project's CI image): skipped without it."""
    pytest.importorskip("lm_eval")
    out = run_lm_eval(str(tiny_kit["policy"]), LMEvalSuite(enabled=True, tasks=["arc_easy"], limit=4, batch_size=2), device="cpu")
    assert 0.0 <= out["lm_eval/arc_easy/acc"] <= 1.0
