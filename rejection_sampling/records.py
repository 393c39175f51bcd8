"""Output rows: every sample, the SFT rows (best of K) and the DPO pair rows, with provenance.

Every row carries where it came from (prompt id, round, sampler model path and content hash,
sampling parameters) and all its scores, so a dataset built from several rounds stays auditable.
Pair rows keep the sampled token ids and log-probs: when the sampler is also DPO's reference
model, the DPO stage uses them as reference log-probs instead of a reference forward pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from herd.core.generation import Sample
from herd.core.scoring import Verdict
from herd.rejection_sampling.judge import Judgement
from herd.rejection_sampling.prompts import Prompt
from herd.rejection_sampling.select import (
    Candidate,
    Pair,
    Ranking,
    make_pair,
    make_safety_pair,
    select_best,
)
from herd.rejection_sampling.config import SelectionConfig


@dataclass(frozen=True)
class RunInfo:
    """Provenance shared by every row of a run."""

    round: int
    sampler_model: str
    sampler_hash: str
    sampling: dict[str, Any]

    def provenance(self, prompt: Prompt) -> dict[str, Any]:
        return {
            "prompt_id": prompt.id,
            "prompt_set": prompt.prompt_set,
            "round": self.round,
            "sampler_model": self.sampler_model,
            "sampler_hash": self.sampler_hash,
            "sampling": self.sampling,
        }


def verdict_dict(v: Verdict | None) -> dict[str, Any] | None:
    return None if v is None else asdict(v)


@dataclass
class PromptOutcome:
    """What one prompt contributes to the three datasets, plus why something was dropped."""

    samples: list[dict]
    sft: dict | None
    sft_reason: str
    pairs: list[dict]
    pair_reasons: list[str]


def _candidates(samples: list[Sample], scores: list[dict], verdicts: list[Verdict | None]) -> list[Candidate]:
    return [
        Candidate(
            k=s.index,
            scores=scores[i],
            truncated=s.truncated,
            safe=v is None or v.safe,
            p_unsafe=0.0 if v is None else float(v.p_unsafe),
            text=s.text,
        )
        for i, (s, v) in enumerate(zip(samples, verdicts))
    ]


def _pair_row(prompt: Prompt, pair: Pair, by_k: dict[int, Sample], info: RunInfo) -> dict:
    c, r = by_k[pair.chosen.k], by_k[pair.rejected.k]
    return {
        "prompt": prompt.messages,
        "chosen": [{"role": "assistant", "content": c.text}],
        "rejected": [{"role": "assistant", "content": r.text}],
        "chosen_token_ids": c.token_ids,
        "rejected_token_ids": r.token_ids,
        "chosen_logprobs": c.logprobs,
        "rejected_logprobs": r.logprobs,
        "chosen_k": c.index,
        "rejected_k": r.index,
        "chosen_scores": dict(pair.chosen.scores),
        "rejected_scores": dict(pair.rejected.scores),
        "chosen_safe": pair.chosen.safe,
        "rejected_safe": pair.rejected.safe,
        "score_gap": pair.margin,
        "pair_type": pair.kind,
        **info.provenance(prompt),
    }


def prompt_outcome(
    prompt: Prompt,
    samples: list[Sample],
    p: int,
    judged: Judgement,
    ranking: Ranking,
    rules: SelectionConfig,
    info: RunInfo,
) -> PromptOutcome:
    """Apply the selection rules to one prompt's K samples and build its output rows."""
    cands = _candidates(samples, judged.scores[p], judged.verdicts[p])
    prompt_verdict = verdict_dict(judged.prompt_verdicts[p])
    rows = []
    for s, c, v in zip(samples, cands, judged.verdicts[p]):
        rows.append({
            **info.provenance(prompt),
            "k": s.index,
            "text": s.text,
            "token_ids": s.token_ids,
            "logprobs": s.logprobs,
            "finish_reason": s.finish_reason,
            "scores": dict(c.scores),
            "rank_score": ranking.score(c),
            "eligible": ranking.eligible(c),
            "verdict": verdict_dict(v),
            "prompt_verdict": prompt_verdict,
        })
    by_k = {s.index: s for s in samples}
    best, sft_reason = select_best(cands, ranking, rules.min_score)
    sft = None
    if best is not None:
        sft = {
            "messages": [*prompt.messages, {"role": "assistant", "content": best.text}],
            "k": best.k,
            "scores": dict(best.scores),
            "rank_score": ranking.score(best),
            "prompt_verdict": prompt_verdict,
            **info.provenance(prompt),
        }
    pairs, reasons = [], []
    pair, reason = make_pair(cands, ranking, rules.pair_margin, rules.rejected_may_be_truncated)
    reasons.append(reason)
    if pair is not None:
        pairs.append(_pair_row(prompt, pair, by_k, info))
    if rules.safety_pairs:
        spair, sreason = make_safety_pair(cands, ranking, pair)
        reasons.append(f"safety:{sreason}")
        if spair is not None:
            pairs.append(_pair_row(prompt, spair, by_k, info))
    return PromptOutcome(rows, sft, sft_reason, pairs, reasons)
