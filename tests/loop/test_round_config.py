"""Round configs: every shipped recipe parses; bad ones fail early with the file and key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from herd.core.config import ConfigError
from herd.loop.cli import main
from herd.loop.config import load_round_config

REPO = Path(__file__).resolve().parents[2]
ROUND_RECIPES = sorted(p for p in (REPO / "recipes").glob("*.yaml"))


def test_round_recipes_exist():
    names = {p.name for p in ROUND_RECIPES}
    assert {"demo.yaml", "llama-3.2-1b-instruct.yaml", "llama-3.1-8b.yaml"} <= names


@pytest.mark.parametrize("path", ROUND_RECIPES, ids=lambda p: p.name)
def test_every_round_recipe_parses(path):
    # Real-model recipes name hub checkpoints and data that cannot be here: types and keys only.
    cfg = load_round_config(path, check_data=path.name == "demo.yaml")
    assert cfg.rounds >= 1 and cfg.data.prompts


def _demo_raw() -> dict:
    return yaml.safe_load((REPO / "recipes" / "demo.yaml").read_text())


def _write(tmp_path, raw) -> Path:
    # Keep data paths valid from the temporary directory.
    p = tmp_path / "round.yaml"
    text = yaml.safe_dump(raw).replace("../data/", str(REPO / "data") + "/")
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "edit, key, what",
    [
        (lambda r: r.update(roundz=2), "roundz", "did you mean 'rounds'"),
        (lambda r: r.update(rounds=0), "<root>", "rounds must be >= 1"),
        (lambda r: r.update(rounds="two"), "rounds", "expected an integer"),
        (lambda r: r["sft"].update(init="scratch"), "sft.init", "not one of"),
        (lambda r: r["sft"]["settings"].update(learning_rat=1e-5), "sft.settings.learning_rat", "did you mean 'learning_rate'"),
        (lambda r: r["dpo"]["settings"].update(beta="high"), "dpo.settings.beta", "expected a number"),
        (lambda r: r["sampling"]["settings"]["sampling"].update(k=0), "sampling.settings.sampling", "k must be >= 1"),
        (lambda r: r["sft"]["settings"].update(output_dir="x"), "sft.settings.output_dir", "set by the round runner"),
        (lambda r: r["data"].update(sft=["/nope/missing.jsonl"]), "data.sft[0]", "data file not found"),
        (lambda r: r["data"]["prompts"][0].update(path="/nope/prompts.jsonl"), "data.prompts[0].path", "data file not found"),
    ],
)
def test_bad_round_configs_name_file_and_key(tmp_path, edit, key, what):
    raw = _demo_raw()
    edit(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(ConfigError) as e:
        load_round_config(path)
    assert str(path) in str(e.value) and key in str(e.value) and what in str(e.value), str(e.value)


def test_bad_config_exits_nonzero_with_message(tmp_path, capsys):
    raw = _demo_raw()
    raw["sft"]["settings"]["learning_rat"] = 1
    code = main(["run", str(_write(tmp_path, raw)), "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 2 and "sft.settings.learning_rat" in err
    assert not (tmp_path / "w" / "manifests").exists()  # nothing started


def test_overrides_apply_before_validation(tmp_path):
    cfg = load_round_config(REPO / "recipes" / "demo.yaml", ["rounds=3", "dpo.settings.beta=0.2"])
    assert cfg.rounds == 3 and cfg.dpo.settings["beta"] == 0.2
