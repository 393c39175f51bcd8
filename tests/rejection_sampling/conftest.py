"""Rejection-sampling test helpers: real prompt rows, a real reward-model scorer, configs.

The tiny policy is randomly initialised, so it almost never emits <|eot_id|> (its next-token
distribution is close to uniform over ~2300 tokens). Tests that need samples which *finish* add
Llama 3's 248 reserved special tokens to the stop set: about one token in ten then ends a sample,
so lengths vary and most samples stop before max_new_tokens — a stop-token configuration, not a
forced length.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from herd.core.generation import LLAMA3_STOP_TOKENS
from herd.core.tiny import llama3_special_tokens
from herd.rejection_sampling import PromptSetConfig, SampleConfig, SamplerConfig, SelectionConfig

DATA = Path(__file__).resolve().parents[2] / "data"
GSM8K = DATA / "gsm8k" / "test.jsonl"
XSTEST = DATA / "xstest" / "xstest_prompts.csv"

#: Stop set that makes the random tiny policy finish samples at varying lengths (see module doc).
VARYING_STOPS = list(LLAMA3_STOP_TOKENS) + [t for t in llama3_special_tokens() if "reserved" in t]


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def xstest_rows(n: int, kind: str = "safe") -> list[dict]:
    """The first ``n`` XSTest prompts that are safe (``kind='safe'``) or unsafe contrast prompts."""
    out = []
    with open(XSTEST, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            if (r["label"] == "safe") == (kind == "safe"):
                out.append({"id": f"xstest-{r['id']}", "prompt": r["prompt"]})
            if len(out) == n:
                break
    return out


@pytest.fixture(scope="session")
def xstest_file(tmp_path_factory) -> Path:
    """6 safe + 4 unsafe real XSTest prompts as herd prompt rows."""
    return write_rows(tmp_path_factory.mktemp("prompts") / "xstest.jsonl", xstest_rows(6) + xstest_rows(4, "unsafe"))


@pytest.fixture(scope="session")
def reward_scorer(tiny_kit):
    from herd.core.reward_scoring import RewardModelScorer

    return RewardModelScorer(str(tiny_kit["reward"]), batch_size=8, name="reward")


def make_config(tiny_kit, out: Path, prompt_sets: list[PromptSetConfig], **kw) -> SampleConfig:
    """A small HF-backend config over the tiny policy; keyword arguments override fields."""
    sampling = kw.pop("sampling", SamplerConfig(k=4, max_new_tokens=24, seed=3, stop_tokens=VARYING_STOPS))
    return SampleConfig(
        model=str(tiny_kit["policy"]),
        output_dir=out,
        prompt_sets=prompt_sets,
        sampling=sampling,
        selection=kw.pop("selection", SelectionConfig(rank_by={"reward": 1.0})),
        backend=kw.pop("backend", "hf"),
        hf_batch_size=kw.pop("hf_batch_size", 4),
        shard_size=kw.pop("shard_size", 4),
        **kw,
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
