"""Preference learners of the Llama 3 recipe: Bradley-Terry reward model and DPO.

``train_reward(RewardConfig) -> Path`` and ``train_dpo(DPOStageConfig) -> Path`` each return a
finished output directory (HF model + tokenizer + metrics.json + herd_config.json), written
atomically; a rerun after a kill resumes from the newest checkpoint.
"""

from herd.preference.data import PreferenceDataConfig, PreferenceDataError, PreferencePair, load_pairs
from herd.preference.dpo import DPOStageConfig, LoraSettings, train_dpo
from herd.preference.reward import RewardConfig, train_reward

__all__ = [
    "DPOStageConfig",
    "LoraSettings",
    "PreferenceDataConfig",
    "PreferenceDataError",
    "PreferencePair",
    "RewardConfig",
    "load_pairs",
    "train_dpo",
    "train_reward",
]
