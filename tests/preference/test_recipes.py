"""Every shipped preference recipe parses into its typed config (unknown keys would fail)."""

from __future__ import annotations

import pytest

from herd.core.config import load_config
from herd.preference import DPOStageConfig, RewardConfig
from tests.conftest import REPO

RECIPES = sorted((REPO / "recipes" / "preference").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_parses(path):
    cls = RewardConfig if "reward" in path.name else DPOStageConfig
    cfg = load_config(cls, path)
    if cls is DPOStageConfig:
        assert cfg.beta == 0.1 and cfg.nll_weight == 0.2 and cfg.mask_formatting_tokens


def test_recipes_exist():
    assert {p.name for p in RECIPES} >= {"tiny_reward_hh.yaml", "tiny_dpo_hh.yaml", "llama-3.2-1b_dpo.yaml"}
