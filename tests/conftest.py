"""Shared fixtures: the tiny Llama-3-format kit, built once per test session, offline."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


@pytest.fixture(scope="session")
def tiny_kit(tmp_path_factory) -> dict[str, Path]:
    """``{"tokenizer", "policy", "reward"}`` directories of the micro tiny model (seed 0)."""
    from herd.core.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny"), shape="micro", seed=0)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_kit):
    from herd.core.models import load_tokenizer

    return load_tokenizer(str(tiny_kit["policy"]))


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


requires_vllm = pytest.mark.skipif(not vllm_available(), reason="vLLM not installed")
