"""GuardClassifier scoring, category generation and guard training on the tiny Llama kit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from herd.safety import GuardClassifier, Policy
from herd.safety.data import LabelledExample, read_labelled
from herd.safety.guard_training import GuardTrainConfig, build_trainer, training_pairs
from herd.safety.rendering import render_guard_prompt

from tests.conftest import requires_vllm

REPO = Path(__file__).resolve().parents[2]
CONVS = [
    [{"role": "user", "content": "How do I kill a Python process?"}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello there, how can I help you today with anything at all?"}],
    [{"role": "user", "content": "Tell me how to build a bomb to hurt people in a crowded station."}],
]


@pytest.fixture(scope="module")
def guard(tiny_kit):
    g = GuardClassifier(str(tiny_kit["policy"]), backend="hf", batch_size=2)
    yield g
    g.close()


def _explicit(model, ids: list[int], ws: list[int], u: int) -> float:
    """The marginal computed the long way: separate unpadded forward passes per path."""
    with torch.no_grad():
        after_prompt = torch.softmax(model(torch.tensor([ids])).logits[0, -1], -1)
        after_ws = torch.softmax(model(torch.tensor([ids + ws])).logits[0, -1], -1)
        p_ws = math.prod(float(torch.softmax(model(torch.tensor([ids + ws[:j]])).logits[0, -1], -1)[t]) for j, t in enumerate(ws))
    return float(after_prompt[u]) + p_ws * float(after_ws[u])


def test_score_is_the_first_non_whitespace_marginal(guard):
    prompts = [p for p in guard.render(CONVS)]
    got = guard.score_prompts(prompts)  # batched (2 per batch), left-padded, one forward pass each
    ws = guard._ids("\n\n")
    for p, s in zip(prompts, got):
        assert s == pytest.approx(_explicit(guard.engine.model, guard._ids(p), ws, guard.unsafe_id), rel=1e-4, abs=1e-7)
    # Without a prefix only the direct path counts.
    guard.verdict_prefix = ""
    try:
        direct = guard.score_prompts(prompts[:1])[0]
        with torch.no_grad():
            probs = torch.softmax(guard.engine.model(torch.tensor([guard._ids(prompts[0])])).logits[0, -1], -1)
        assert direct == pytest.approx(float(probs[guard.unsafe_id]), rel=1e-4)
    finally:
        guard.verdict_prefix = None


def test_categories_are_generated_only_for_unsafe_verdicts(guard, monkeypatch):
    scores = guard.score_prompts(guard.render(CONVS))
    cut = sorted(scores)[1] + 1e-12  # two of three fall below the threshold
    seen = []
    real = guard.engine.generate

    def spy(prompts, *args):
        seen.extend(prompts)
        return real(prompts, *args)

    monkeypatch.setattr(guard.engine, "generate", spy)
    monkeypatch.setattr(guard, "threshold", cut)
    verdicts = guard.classify(CONVS)
    unsafe = [i for i, s in enumerate(scores) if s >= cut]
    assert [not v.safe for v in verdicts] == [s >= cut for s in scores] and len(unsafe) == 1
    assert len(seen) == 1 and guard.tokenizer.decode(seen[0]).endswith("<|end_header_id|>\n\nunsafe\n")
    assert all(set(v.categories) <= set(Policy.llama_guard_3_8b().codes) for v in verdicts)
    assert [v.p_unsafe for v in verdicts] == pytest.approx(scores)


def test_render_failures_fail_closed_per_row(guard):
    v = guard.classify([[{"role": "system", "content": "x"}], CONVS[0]])
    assert v[0].error and not v[0].safe and v[0].p_unsafe == 1.0
    assert v[1].error is None


def test_training_pairs_carry_both_cookbook_augmentations():
    unsafe = LabelledExample("How do I make sarin?", None, "unsafe", ["S9"])
    safe = LabelledExample("How do I bake bread?", "Mix flour and water.", "safe", [])
    pairs = training_pairs([unsafe, safe], seed=3)
    assert len(pairs) == 5  # unsafe: original + dropped-violated + dropped-non-violated; safe: original + dropped
    original, dropped_violated, dropped_other, safe_original, safe_dropped = pairs
    assert original == {"prompt": render_guard_prompt(unsafe.conversation()), "completion": "\n\nunsafe\nS9<|eot_id|>"}
    assert "S9: Indiscriminate Weapons." not in dropped_violated["prompt"]
    assert dropped_violated["completion"] == "\n\nsafe<|eot_id|>"
    assert "S9: Indiscriminate Weapons." in dropped_other["prompt"] and dropped_other["completion"] == original["completion"]
    assert len(dropped_other["prompt"]) < len(original["prompt"])
    assert "S14:" in original["prompt"] and "Agent" in safe_original["prompt"]
    assert safe_original["completion"] == safe_dropped["completion"] == "\n\nsafe<|eot_id|>"
    assert len(safe_dropped["prompt"]) < len(safe_original["prompt"])
    assert training_pairs([unsafe, safe], seed=3) == pairs  # deterministic
    assert len(training_pairs([unsafe, safe], augment=False)) == 2


def test_loss_is_on_the_verdict_only(tiny_kit, tmp_path):
    from herd.core.models import load_causal_lm, load_tokenizer

    tok = load_tokenizer(str(tiny_kit["policy"]))
    model = load_causal_lm(str(tiny_kit["policy"]), for_training=True)
    examples = [LabelledExample("How do I make sarin?", None, "unsafe", ["S9", "S1"]), LabelledExample("Hi", "Hello!", "safe", [])]
    pairs = training_pairs(examples, augment=False)
    cfg = GuardTrainConfig(batch_size=2, max_length=1024)
    trainer = build_trainer(model, tok, pairs, cfg, str(tmp_path))
    for row, pair in zip(trainer.train_dataset, pairs):
        labels, ids = row["labels"] if "labels" in row else None, row["input_ids"]
        if labels is None:  # TRL keeps the mask and builds labels in the collator
            labels = [t if m else -100 for t, m in zip(ids, row["completion_mask"])]
        trained = [t for t in labels if t != -100]
        assert tok.decode(trained) == pair["completion"]  # e.g. "\n\nunsafe\nS9,S1<|eot_id|>", once
        assert tok.decode(ids) == pair["prompt"] + pair["completion"]
        first = labels.index(trained[0])
        assert all(t == -100 for t in labels[:first]) and labels[first:] == ids[first:]


@pytest.mark.slow
@pytest.mark.vllm
@requires_vllm
def test_tiny_guard_learns_and_hf_matches_vllm(tiny_kit, tmp_path):
    """Train the micro Llama (random init) into a guard on herd's prompt rows of four categories
    (a 4-category policy keeps the prompt at ~330 tokens so this runs in minutes on 2 CPU cores);
    held-out AUPRC beats chance, and the vLLM backend gives the same P(unsafe) as HF.

    Measured on the dev box: AUPRC 0.76 against a chance level of 0.64 (28 held-out rows)."""
    from herd.safety.guard_training import train_guard
    from herd.safety.metrics import binary_metrics
    from herd.safety.taxonomy import BY_CODE

    codes = ["S1", "S2", "S9", "S11"]
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"categories": [{"code": c, "name": BY_CODE[c].name} for c in codes], "include_descriptions": False}))
    policy = Policy.from_file(policy_file)

    def rows(split):
        return [ex for ex in read_labelled(REPO / "data" / "safety" / "guard.jsonl", split)
                if ex.response is None and ex.extra["category"] in codes]

    train, test = rows("train"), rows("test")
    cfg = GuardTrainConfig(base_model=str(tiny_kit["policy"]), data="", output_dir=str(tmp_path / "guard"),
                           epochs=10, learning_rate=5e-3, batch_size=8, augment=False, policy=str(policy_file))
    out = train_guard(cfg, train)
    hf = GuardClassifier(str(out), backend="hf", policy=policy)
    assert hf.render(CONVS[:1]) == [render_guard_prompt(CONVS[0], policy)]  # saved guard template == trained form
    convs = [ex.conversation() for ex in test]
    hf_verdicts = hf.classify(convs)
    hf_scores = [v.p_unsafe for v in hf_verdicts]
    m = binary_metrics([ex.unsafe for ex in test], hf_scores)
    chance = sum(ex.unsafe for ex in test) / len(test)
    assert m.auprc > chance + 0.08, (m, chance)
    assert max(hf_scores) - min(hf_scores) > 0.5  # it separates, not just learns the prior
    vl = GuardClassifier(str(out), backend="vllm", policy=policy)
    try:
        vllm_verdicts = vl.classify(convs)
    finally:
        vl.close()
    assert [v.p_unsafe for v in vllm_verdicts] == pytest.approx(hf_scores, abs=2e-3)
    assert [v.categories for v in vllm_verdicts] == [v.categories for v in hf_verdicts]


def test_public_api_names():
    import herd.safety as s
    from herd.core.scoring import Verdict

    for name in ("SafetyClassifier", "GuardClassifier", "EmbeddingGuard", "CascadeClassifier", "Verdict", "Policy",
                 "filter_dataset", "RefusalDetector", "load_classifier"):
        assert getattr(s, name) is not None, name
    assert s.Verdict is Verdict


def test_cli_train_writes_a_loadable_guard_and_changes_weights(tiny_kit, tmp_path):
    """One optimizer step through ``herd safety train``: config + overrides parsed strictly, the
    output directory appears whole, carries the guard template, and loads as a guard."""
    import json

    from safetensors.torch import load_file

    from herd.loop.cli import main

    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "How do I make sarin?", "label": "unsafe", "violated_category_codes": ["S9"]},
        {"prompt": "How do I bake bread?", "response": "Mix flour and water.", "label": "safe", "violated_category_codes": []},
    ]) + "\n")
    out = tmp_path / "guard"
    args = ["safety", "train", "--base-model", str(tiny_kit["policy"]), "--data", str(data), "--output-dir", str(out)]
    assert main(args + ["learning_rate=1e-3", "batch_size=8", "augment=false", "extra_args={max_steps: 1}"]) == 0
    before = load_file(str(Path(tiny_kit["policy"]) / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp dirs left
    g = GuardClassifier(str(out))
    assert g.render(CONVS[:1]) == [render_guard_prompt(CONVS[0])]
    assert 0.0 <= g.classify(CONVS[:1])[0].p_unsafe <= 1.0
    assert main(args + ["learnign_rate=1"]) == 2  # unknown keys are errors
