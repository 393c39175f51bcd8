"""LLM-judge rubric scores (Llama 3 §4.2.3): quality and difficulty, each on a 3-point scale.

The paper prompts a Llama 3 checkpoint to rate general data on accuracy, instruction following
and tone/presentation (3 points; the maximum counts as high quality) and to rate dialog
difficulty on a 3-point scale (after Liu et al., 2024, "What makes good data for alignment?").
The rubric wording below is ours. The judge answers through any
:class:`herd.core.generation.GenerationBackend` (vLLM or HF) with greedy decoding; an answer
without a parsable score is recorded as None and counted, never guessed.
"""

from __future__ import annotations

import re
from typing import Sequence

from herd.core.chat import render
from herd.core.generation import GenerationBackend, SamplingSpec

QUALITY_RUBRIC = """You are grading one conversation between a user and an AI assistant.
Rate the assistant's replies on a 3-point scale, considering accuracy, instruction following,
and tone/presentation together:
1 = inaccurate, off-task, or badly presented;
2 = mostly correct and on-task, with noticeable flaws in accuracy, completeness or presentation;
3 = accurate, follows every instruction, clear and well-presented.
Reply with one short sentence of justification, then a final line of the form "Score: N"."""

DIFFICULTY_RUBRIC = """You are rating how difficult one conversation between a user and an AI
assistant is to answer well. Judge the user's requests, not the quality of the replies:
1 = easy: a simple request that needs common knowledge or a short reply;
2 = medium: several steps, some domain knowledge, or several constraints to satisfy;
3 = hard: expert knowledge, long multi-step reasoning, or many interacting constraints.
Reply with one short sentence of justification, then a final line of the form "Score: N"."""

_SCORE = re.compile(r"score\s*[:=]\s*\**\s*([1-3])\b", re.IGNORECASE)
_BARE = re.compile(r"^\s*([1-3])\s*$", re.MULTILINE)


def parse_score(text: str) -> int | None:
    """The last "Score: N" (N in 1..3) in the judge's answer, or a lone digit line; else None."""
    found = _SCORE.findall(text)
    if found:
        return int(found[-1])
    bare = _BARE.findall(text)
    return int(bare[-1]) if bare else None


def _dialog_for_judge(messages: Sequence[dict], max_chars: int) -> str:
    text = "\n\n".join(f"[{m['role'].upper()}]\n{m['content'].strip()}" for m in messages)
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + "\n[... middle omitted ...]\n" + text[-half:]


def judge_prompt(rubric: str, messages: Sequence[dict], max_chars: int) -> str:
    """The rendered Llama 3 prompt asking the judge to rate one conversation."""
    user = f"{rubric}\n\n<conversation>\n{_dialog_for_judge(messages, max_chars)}\n</conversation>"
    return render([{"role": "user", "content": user}], add_generation_prompt=True)


def judge_scores(
    backend: GenerationBackend,
    rows: Sequence[dict],
    rubric: str,
    max_new_tokens: int = 64,
    max_dialog_chars: int = 6000,
) -> list[int | None]:
    """One 1-3 score (or None when unparsable) per row, judged greedily in one backend call."""
    if not rows:
        return []
    prompts = [judge_prompt(rubric, r["messages"], max_dialog_chars) for r in rows]
    spec = SamplingSpec(n=1, temperature=0.0, max_new_tokens=max_new_tokens)
    outputs = backend.generate(prompts, spec)
    return [parse_score(samples[0].text) if samples else None for samples in outputs]
