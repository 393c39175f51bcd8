"""``herd reward`` and ``herd dpo``: the preference stages from a YAML config plus overrides."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("reward", help="train a Bradley-Terry reward model (Llama 3 §4.1.2)")
    r.add_argument("--config", required=True, help="stage YAML (herd.preference.RewardConfig)")
    r.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. learning_rate=2e-5")
    r.set_defaults(handler=_reward)

    d = sub.add_parser("dpo", help="DPO with the Llama 3 recipe (§4.1.4) on TRL's DPOTrainer")
    d.add_argument("--config", required=True, help="stage YAML (herd.preference.DPOStageConfig)")
    d.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. beta=0.05")
    d.set_defaults(handler=_dpo)


def _reward(args) -> int:
    from herd.core.config import load_config
    from herd.preference import RewardConfig, train_reward

    print(train_reward(load_config(RewardConfig, args.config, args.overrides)))
    return 0


def _dpo(args) -> int:
    from herd.core.config import load_config
    from herd.preference import DPOStageConfig, train_dpo

    print(train_dpo(load_config(DPOStageConfig, args.config, args.overrides)))
    return 0
