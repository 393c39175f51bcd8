"""The GSM8K verifier on real rows, and reward-among-verified-correct selection with real scorers."""

from __future__ import annotations

import json

import pytest

from herd.core.generation import Sample
from herd.core.verifiers import NumberMatchVerifier, gsm8k_reference
from herd.rejection_sampling import PromptSetConfig, Ranking, SelectionConfig, load_prompts, make_pair, select_best
from herd.rejection_sampling.judge import judge
from herd.rejection_sampling.records import _candidates
from tests.rejection_sampling.conftest import GSM8K

N_ROWS = 200


@pytest.fixture(scope="module")
def gsm8k_rows():
    rows = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines()[:N_ROWS]]
    prompts = load_prompts([PromptSetConfig(path=GSM8K, format="gsm8k", limit=N_ROWS)])
    return rows, prompts


def _wrong(answer: str, reference: str) -> str:
    head, _ = answer.rsplit("####", 1)
    return f"{head}#### {int(float(reference)) + 1}"


def test_verifier_is_right_on_real_rows(gsm8k_rows):
    rows, prompts = gsm8k_rows
    verifier = NumberMatchVerifier()
    convs, meta, expected = [], [], []
    for row, prompt in zip(rows, prompts):
        assert prompt.reference == gsm8k_reference(row["answer"])
        for text, ok in ((row["answer"], 1.0), (_wrong(row["answer"], prompt.reference), 0.0),
                         (f"So the answer is {prompt.reference}.", 1.0), ("I cannot tell.", 0.0)):
            convs.append([*prompt.messages, {"role": "assistant", "content": text}])
            meta.append(prompt.scorer_metadata())
            expected.append(ok)
    assert verifier.score(convs, meta) == expected
    # References are the numbers after "#### " in the data.
    assert {p.reference for p in prompts} >= {"18", "3", "70000"}


def test_reward_ranks_only_among_verified_correct_samples(gsm8k_rows, reward_scorer):
    rows, prompts = gsm8k_rows
    prompt, row = prompts[0], rows[0]
    texts = [
        _wrong(row["answer"], prompt.reference),               # wrong
        row["answer"],                                          # right, worked solution
        f"The answer is {prompt.reference}.",                   # right, terse
        "Janet makes money at the market. #### 5",              # wrong
    ]
    samples = [[Sample(t, [1], [0.0], "stop", index=k) for k, t in enumerate(texts)]]
    judged = judge([prompt], samples, {"reward": reward_scorer, "verifier": NumberMatchVerifier()})
    assert [s["verifier"] for s in judged.scores[0]] == [0.0, 1.0, 1.0, 0.0]
    cands = _candidates(samples[0], judged.scores[0], judged.verdicts[0])
    ranking = Ranking.from_config(SelectionConfig(rank_by={"reward": 1.0}, require={"verifier": 1.0}), ["reward", "verifier"])
    best, _ = select_best(cands, ranking)
    rewards = [s["reward"] for s in judged.scores[0]]
    assert best.k == max((1, 2), key=lambda k: rewards[k])  # the better-rewarded CORRECT sample
    pair, _ = make_pair(cands, ranking, margin=100.0)
    assert pair.chosen.k == best.k and pair.rejected.k == min((0, 3), key=lambda k: rewards[k])
