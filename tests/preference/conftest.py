"""Preference-stage fixtures: small synthetic preference sets written as real JSONL files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TOPICS = ["llamas", "rivers", "bread", "stars", "music", "trees", "cats", "boats", "rain", "chess", "tea", "maps"]


def pref_row(topic: str) -> dict:
    """A pair whose preference is obvious from the text (helpful vs curt)."""
    return {
        "prompt": [{"role": "user", "content": f"Tell me about {topic}."}],
        "chosen": [{"role": "assistant", "content": f"Sure, {topic} are wonderful and I am happy to help."}],
        "rejected": [{"role": "assistant", "content": "No."}],
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "pairs.jsonl", [pref_row(t) for t in TOPICS * 2])


@pytest.fixture(scope="session")
def other_policy(tiny_kit, tmp_path_factory) -> Path:
    """A second tiny policy (different seed, same tokenizer): a reference that differs from the policy."""
    from herd.core.models import load_tokenizer
    from herd.core.tiny import build_models

    tok = load_tokenizer(str(tiny_kit["tokenizer"]))
    out = tmp_path_factory.mktemp("other")
    return build_models(out, tokenizer=tok, seed=7, reward_model=False)["policy"]
