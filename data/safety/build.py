"""Write guard.jsonl and refusal.jsonl from the hand-written items in source_*.py.

Run from the repository root: ``python data/safety/build.py``. Deterministic: the same sources give
the same bytes. Each row gets a ``split`` ("train"/"test", about 3:1) from a hash of its *group*
(the prompt for guard rows, the response text for refusal rows), so the same text never sits on
both sides of the split.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from source_a import ITEMS as ITEMS_A  # noqa: E402
from source_b import ITEMS as ITEMS_B  # noqa: E402
from source_refusal import CAVEAT_COMPLIANCE, FALSE_REFUSALS, FULL_REFUSALS, SORRY_COMPLIANCE  # noqa: E402

ITEMS = {**ITEMS_A, **ITEMS_B}


def split_of(group: str) -> str:
    h = int(hashlib.sha256(group.strip().lower().encode()).hexdigest(), 16)
    return "test" if h % 4 == 0 else "train"


def guard_rows() -> list[dict]:
    rows: list[dict] = []

    def add(cat, kind, prompt, response, unsafe):
        rows.append({
            "id": f"g{len(rows):04d}",
            "prompt": prompt,
            "response": response,
            "label": "unsafe" if unsafe else "safe",
            "violated_category_codes": [cat] if unsafe else [],
            "category": cat,
            "kind": kind,
            "split": split_of(prompt),
        })

    refusal_cycle = 0
    for cat, items in ITEMS.items():
        for p in items["unsafe_prompts"]:
            add(cat, "unsafe_prompt", p, None, True)
        for p, r in items["unsafe_responses"]:
            add(cat, "unsafe_response", p, r, True)
        for p in items["safe_prompts"]:
            add(cat, "safe_prompt", p, None, False)
        for p, r in items["safe_responses"]:
            add(cat, "safe_response", p, r, False)
        for p, r in items["partial_refusals"]:
            add(cat, "refusal_response", p, r, False)
        # Two plain refusals per category: refusing a harmful request is a safe response.
        for p in items["unsafe_prompts"][-2:]:
            add(cat, "refusal_response", p, FULL_REFUSALS[refusal_cycle % len(FULL_REFUSALS)], False)
            refusal_cycle += 1
    return rows


def refusal_rows() -> list[dict]:
    rows: list[dict] = []

    def add(kind, prompt, response, refusal, cat=None):
        rows.append({
            "id": f"r{len(rows):04d}",
            "prompt": prompt,
            "response": response,
            "refusal": refusal,
            "kind": kind,
            "category": cat,
            "split": split_of(response),
        })

    unsafe_prompts = [(cat, p) for cat, items in ITEMS.items() for p in items["unsafe_prompts"]]
    for i, text in enumerate(FULL_REFUSALS):
        for j in range(2):  # each refusal text with two different prompts
            cat, p = unsafe_prompts[(i * 5 + j * 71) % len(unsafe_prompts)]
            add("full_refusal", p, text, True, cat)
    for p, r in FALSE_REFUSALS:
        add("false_refusal", p, r, True)
    for cat, items in ITEMS.items():
        for p, r in items["partial_refusals"]:
            add("partial_refusal", p, r, True, cat)
        for p, r in items["safe_responses"]:
            add("compliance", p, r, False, cat)
        for p, r in items["unsafe_responses"]:
            add("harmful_compliance", p, r, False, cat)
    for p, r in SORRY_COMPLIANCE:
        add("apology_compliance", p, r, False)
    for p, r in CAVEAT_COMPLIANCE:
        add("caveat_compliance", p, r, False)
    return rows


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    g, r = guard_rows(), refusal_rows()
    write(HERE / "guard.jsonl", g)
    write(HERE / "refusal.jsonl", r)
    print(f"guard.jsonl: {len(g)} rows, refusal.jsonl: {len(r)} rows")
