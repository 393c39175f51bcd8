"""Score a shard's samples with every scorer and the guard, in as few calls as possible.

Each scorer sees all samples of the shard in one call (a reward model batches them sorted by
length), and the guard classifies all responses in one call, so the stage's overhead around the
engine stays small.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from herd.core.generation import Sample
from herd.core.scoring import SafetyJudge, Scorer, Verdict
from herd.rejection_sampling.prompts import Prompt


@dataclass
class Judgement:
    """Per-prompt lists of per-sample results (``scores[p][k]``, ``verdicts[p][k]``)."""

    scores: list[list[dict[str, float]]]
    verdicts: list[list[Verdict | None]]
    prompt_verdicts: list[Verdict | None]
    timings: dict[str, float] = field(default_factory=dict)


def conversation(prompt: Prompt, text: str) -> list[dict]:
    return [*prompt.messages, {"role": "assistant", "content": text}]


def _applies(prompt: Prompt, name: str) -> bool:
    return prompt.scorers is None or name in prompt.scorers


def _run_scorer(name: str, scorer: Scorer, prompts: Sequence[Prompt], samples, scores) -> None:
    slots = [(p, k) for p, prompt in enumerate(prompts) if _applies(prompt, name) for k in range(len(samples[p]))]
    if not slots:
        return
    convs = [conversation(prompts[p], samples[p][k].text) for p, k in slots]
    meta = [{**prompts[p].scorer_metadata(), "k": k} for p, k in slots]
    values = scorer.score(convs, meta)
    if len(values) != len(slots):
        raise ValueError(f"scorer {name!r} returned {len(values)} scores for {len(slots)} samples")
    for (p, k), v in zip(slots, values):
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"scorer {name!r} gave a non-finite score ({v}) to prompt {prompts[p].id!r} sample {k}")
        scores[p][k][name] = v


def _fail_closed(v: Verdict, fail_closed: bool) -> Verdict:
    if v.error and fail_closed and v.safe:
        return Verdict(False, list(v.categories), v.p_unsafe, v.error)
    return v


def _classify(safety: SafetyJudge, convs: list, fail_closed: bool, what: str) -> list[Verdict]:
    verdicts = safety.classify(convs) if convs else []
    if len(verdicts) != len(convs):
        raise ValueError(f"safety classifier returned {len(verdicts)} verdicts for {len(convs)} {what}")
    return [_fail_closed(v, fail_closed) for v in verdicts]


def judge(
    prompts: Sequence[Prompt],
    samples: Sequence[Sequence[Sample]],
    scorers: Mapping[str, Scorer],
    safety: SafetyJudge | None = None,
    classify_prompts: bool = True,
    fail_closed: bool = True,
) -> Judgement:
    """Scores of every applicable scorer and guard verdicts for every sample of a shard."""
    scores: list[list[dict[str, float]]] = [[{} for _ in s] for s in samples]
    timings: dict[str, float] = {}
    for name, scorer in scorers.items():
        t = time.perf_counter()
        _run_scorer(name, scorer, prompts, samples, scores)
        timings[f"score:{name}"] = time.perf_counter() - t
    verdicts: list[list[Verdict | None]] = [[None] * len(s) for s in samples]
    prompt_verdicts: list[Verdict | None] = [None] * len(prompts)
    if safety is not None:
        t = time.perf_counter()
        slots = [(p, k) for p in range(len(prompts)) for k in range(len(samples[p]))]
        flat = _classify(safety, [conversation(prompts[p], samples[p][k].text) for p, k in slots], fail_closed, "responses")
        for (p, k), v in zip(slots, flat):
            verdicts[p][k] = v
        if classify_prompts:
            prompt_verdicts = list(_classify(safety, [list(p.messages) for p in prompts], fail_closed, "prompts"))
        timings["safety"] = time.perf_counter() - t
    return Judgement(scores, verdicts, prompt_verdicts, timings)
