"""The embedded demo task: parity (``N mod 2``), with warm-start data that carries a systematic error.

The demo must show, on a CPU in minutes, what the loop does that plain imitation cannot. So the
warm-start demonstrations of every odd number ending in 1, 3, 7 or 9 are *mostly* wrong in the
same way — they call it even ("What is 17 mod 2?" -> "0") — while a minority are right. Supervised imitation
of that data learns the majority error; sampling K answers per prompt, keeping the ones the
verifier accepts (SFT on the best) and preferring them over the wrong ones (DPO on best vs worst)
turns the minority answer into the greedy one. The verifier is core's final-number exact match,
the same one GSM8K uses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from herd.core.artifacts import atomic_write_jsonl

SYSTEM_PROMPT = "You compute remainders."


@dataclass(frozen=True)
class DemoTaskSpec:
    """How the demo data is made (defaults are what recipes/demo.yaml uses)."""

    max_number: int = 29
    """Problems are N mod 2 for N in 0..max_number. Each number is one token to the model (Llama
    3 tokenizes 1-3 digit groups), so every problem is a fact of its own to learn: 30 keep the
    warm start to a couple of CPU minutes."""
    demos_per_problem: int = 20
    """Warm-start demonstrations per problem."""
    trap_digits: tuple[int, ...] = (1, 3, 7, 9)
    """Odd numbers ending in these digits are the ones the demonstrations get wrong."""
    wrong_demos: int = 13
    """Demonstrations per trap problem that give the wrong remainder (the systematic error)."""
    seed: int = 0


def problem_id(n: int) -> str:
    return f"mod2-{n}"


def question(n: int) -> str:
    return f"What is {n} mod 2?"


def answer(n: int, value: int) -> str:
    return str(value)


def is_trap(n: int, spec: DemoTaskSpec) -> bool:
    return n % 10 in spec.trap_digits


def prompt_rows(spec: DemoTaskSpec) -> list[dict]:
    """Every problem once, as prompt-set rows with the verifier's reference."""
    return [
        {
            "id": problem_id(n),
            "messages": [{"role": "user", "content": question(n)}],
            "reference": str(n % 2),
            "trap": is_trap(n, spec),
        }
        for n in range(spec.max_number + 1)
    ]


def warm_start_rows(spec: DemoTaskSpec) -> list[dict]:
    """SFT rows: ``demos_per_problem`` per problem; trap problems are mostly answered wrong.

    The number of wrong demos per trap problem is fixed, not sampled, so every trap problem has
    the same majority error and the control run cannot get lucky.
    """
    rng = random.Random(spec.seed)
    rows = []
    for n in range(spec.max_number + 1):
        for d in range(spec.demos_per_problem):
            value = 1 - n % 2 if is_trap(n, spec) and d < spec.wrong_demos else n % 2
            rows.append(
                {
                    "id": f"{problem_id(n)}-demo{d}",
                    "messages": [
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": question(n)},
                        {"role": "assistant", "content": answer(n, value)},
                    ],
                }
            )
    rng.shuffle(rows)
    return rows


def preference_rows(spec: DemoTaskSpec) -> list[dict]:
    """Human preference pairs for the reward model: the right remainder over the wrong one.
    Judging is easier than writing: these annotations are right even where the demonstrations
    are not."""
    return [
        {
            "id": f"{problem_id(n)}-pref",
            "prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question(n)}],
            "chosen": [{"role": "assistant", "content": answer(n, n % 2)}],
            "rejected": [{"role": "assistant", "content": answer(n, 1 - n % 2)}],
        }
        for n in range(spec.max_number + 1)
    ]


def write_demo_data(out_dir: Path | str, spec: DemoTaskSpec | None = None) -> dict[str, Path]:
    """Write ``prompts.jsonl`` (sampling + eval prompts), ``warm_start.jsonl`` (SFT) and
    ``preferences.jsonl`` (reward model)."""
    spec = spec or DemoTaskSpec()
    out = Path(out_dir)
    return {
        "prompts": atomic_write_jsonl(out / "prompts.jsonl", prompt_rows(spec)),
        "warm_start": atomic_write_jsonl(out / "warm_start.jsonl", warm_start_rows(spec)),
        "preferences": atomic_write_jsonl(out / "preferences.jsonl", preference_rows(spec)),
    }
