"""The embedded demo task: one-digit addition, with warm-start data that carries a systematic error.

The demo must show, on a CPU in minutes, what the loop does that plain imitation cannot. So the
warm-start demonstrations of every sum with a carry (a + b >= 10) are *mostly* wrong in the same
way — the tens digit is dropped ("7 + 5 = 2") — while a minority are right. Supervised imitation
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

SYSTEM_PROMPT = "You add numbers."


@dataclass(frozen=True)
class DemoTaskSpec:
    """How the demo data is made (defaults are what recipes/demo.yaml uses)."""

    max_operand: int = 9
    """Operands range over 0..max_operand (100 problems at 9)."""
    demos_per_problem: int = 6
    """Warm-start demonstrations per problem."""
    carry_wrong_demos: int = 4
    """Demonstrations per carry problem that drop the tens digit (the systematic error)."""
    seed: int = 0


def problem_id(a: int, b: int) -> str:
    return f"add-{a}-{b}"


def question(a: int, b: int) -> str:
    return f"What is {a} + {b}?"


def answer(a: int, b: int, value: int) -> str:
    return f"{a} + {b} = {value}"


def problems(spec: DemoTaskSpec) -> list[tuple[int, int]]:
    n = spec.max_operand + 1
    return [(a, b) for a in range(n) for b in range(n)]


def prompt_rows(spec: DemoTaskSpec) -> list[dict]:
    """Every problem once, as prompt-set rows with the verifier's reference."""
    return [
        {
            "id": problem_id(a, b),
            "messages": [{"role": "user", "content": question(a, b)}],
            "reference": str(a + b),
            "carry": a + b >= 10,
        }
        for a, b in problems(spec)
    ]


def warm_start_rows(spec: DemoTaskSpec) -> list[dict]:
    """SFT rows: ``demos_per_problem`` per problem; carry problems mostly drop the tens digit.

    The number of wrong demos per carry problem is fixed, not sampled, so every carry problem has
    the same majority error and the control run cannot get lucky.
    """
    rng = random.Random(spec.seed)
    rows = []
    n_wrong = spec.carry_wrong_demos
    for a, b in problems(spec):
        carry = a + b >= 10
        for d in range(spec.demos_per_problem):
            value = (a + b) % 10 if carry and d < n_wrong else a + b
            rows.append(
                {
                    "id": f"{problem_id(a, b)}-demo{d}",
                    "messages": [
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": question(a, b)},
                        {"role": "assistant", "content": answer(a, b, value)},
                    ],
                }
            )
    rng.shuffle(rows)
    return rows


def preference_rows(spec: DemoTaskSpec) -> list[dict]:
    """Human preference pairs for the reward model: the right sum over the tempting wrong one
    (tens digit dropped for carries, off by one otherwise). Judging is easier than writing:
    these annotations are right even where the demonstrations are not."""
    rows = []
    for a, b in problems(spec):
        wrong = (a + b) % 10 if a + b >= 10 else a + b + 1
        rows.append(
            {
                "id": f"{problem_id(a, b)}-pref",
                "prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question(a, b)}],
                "chosen": [{"role": "assistant", "content": answer(a, b, a + b)}],
                "rejected": [{"role": "assistant", "content": answer(a, b, wrong)}],
            }
        )
    return rows


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
