"""DPO inputs: tokenized pairs with the Llama 3 loss mask, and the collator that applies it.

Llama 3 (§4.1.4) masks "special formatting tokens including header and termination tokens" out
of both the chosen and the rejected log-probs: those tokens are identical in both responses, so
learning to raise one and lower the other sends contradictory gradients. TRL has no such switch,
so herd tokenizes the pairs itself, keeps a per-token loss mask next to each response, and its
collator multiplies TRL's completion mask by it. Every consumer of that completion mask (the
sigmoid term, the NLL term, TRL's reference precompute) then sees the same tokens.

Pairs produced by rejection sampling carry the completion token ids exactly as sampled and their
log-probs under the sampler. The ids are used as the completion (re-tokenizing decoded text can
give other ids), and when the sampler *is* the reference model the log-probs are summed under the
same mask into ``ref_chosen_logps``/``ref_rejected_logps``, which saves the reference forward pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from trl.trainer.dpo_trainer import DataCollatorForPreference

from herd.core.chat import format_token_mask, render_with
from herd.preference.data import BadRows, PreferenceDataError, PreferencePair

log = logging.getLogger(__name__)


def loss_mask(tokenizer, completion_ids: list[int], mask_formatting: bool) -> list[int]:
    """1 where a completion token counts in the DPO loss; formatting tokens get 0 when masked."""
    if not mask_formatting:
        return [1] * len(completion_ids)
    return [1 - m for m in format_token_mask(tokenizer, completion_ids)]


def _recorded_ids(tokenizer, pair: PreferencePair, side: str, response: list[dict]) -> list[int] | None:
    """The sampler's completion ids when present and consistent with the response text."""
    ids = pair.sampler.get(f"{side}_token_ids")
    if not ids:
        return None
    if max(ids) >= len(tokenizer):
        raise PreferenceDataError(f"'{side}_token_ids' has ids outside this tokenizer's vocabulary")
    text = tokenizer.decode(ids, skip_special_tokens=True).strip()
    if text != response[-1]["content"].strip():
        log.warning("%s: recorded %s token ids do not decode to the response; re-tokenizing", pair.source, side)
        return None
    return list(ids)


def _completion_ids(tokenizer, prompt_ids: list[int], messages: list[dict]) -> list[int]:
    full = tokenizer(render_with(tokenizer, messages), add_special_tokens=False)["input_ids"]
    if full[: len(prompt_ids)] != prompt_ids:
        raise PreferenceDataError("the rendered prompt is not a token prefix of prompt + response")
    return full[len(prompt_ids) :]


@dataclass
class DPOBuildReport:
    """What dataset building did: pairs kept, pairs skipped (by reason), log-prob reuse."""

    pairs: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    recorded_ids: int = 0
    reused_ref_logps: bool = False
    reuse_note: str = ""


def tokenize_pair(tokenizer, pair: PreferencePair, mask_formatting: bool) -> dict[str, Any]:
    """One pair as DPO token ids + loss masks (+ sampler log-prob sums when recorded)."""
    prompt_text = render_with(tokenizer, pair.prompt, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    out: dict[str, Any] = {"prompt_ids": prompt_ids}
    for side, response in (("chosen", pair.chosen), ("rejected", pair.rejected)):
        ids = _recorded_ids(tokenizer, pair, side, response)
        out[f"{side}_recorded"] = ids is not None
        if ids is None:
            ids = _completion_ids(tokenizer, prompt_ids, pair.prompt + response)
        mask = loss_mask(tokenizer, ids, mask_formatting)
        if not any(mask):
            raise PreferenceDataError(f"'{side}' has no token left after masking (empty response)")
        out[f"{side}_ids"], out[f"{side}_loss_mask"] = ids, mask
        lps = pair.sampler.get(f"{side}_logprobs")
        if out[f"{side}_recorded"] and lps is not None and len(lps) == len(ids):
            out[f"sampler_{side}_logps"] = float(sum(lp * m for lp, m in zip(lps, mask)))
    if out["chosen_ids"] == out["rejected_ids"]:
        raise PreferenceDataError("chosen and rejected tokenize identically")
    out["length"] = len(prompt_ids) + max(len(out["chosen_ids"]), len(out["rejected_ids"]))
    return out


def build_dpo_rows(
    pairs: list[PreferencePair],
    tokenizer,
    mask_formatting: bool = True,
    bad_rows: BadRows = "fail",
    reuse_ref_logps: bool = False,
    max_length: int | None = None,
) -> tuple[list[dict], DPOBuildReport]:
    """Tokenize pairs; attach reference log-probs from the sampler when ``reuse_ref_logps``.

    Reuse is all-or-nothing: TRL reads reference log-probs from the batch for every pair or for
    none, so one pair without a record (or one that would be truncated) turns it off.
    """
    report = DPOBuildReport()
    rows = []
    for pair in pairs:
        try:
            rows.append(tokenize_pair(tokenizer, pair, mask_formatting))
        except PreferenceDataError as e:
            if bad_rows == "fail":
                raise PreferenceDataError(f"{pair.source}: {e}") from None
            report.skipped[str(e)] = report.skipped.get(str(e), 0) + 1
    if not rows:
        raise PreferenceDataError("no usable DPO pairs after tokenization")
    report.pairs = len(rows)
    report.recorded_ids = sum(r["chosen_recorded"] and r["rejected_recorded"] for r in rows)
    if reuse_ref_logps:
        report.reuse_note = _reuse_blocker(rows, max_length)
        report.reused_ref_logps = not report.reuse_note
    for r in rows:
        if report.reused_ref_logps:
            r["ref_chosen_logps"] = r["sampler_chosen_logps"]
            r["ref_rejected_logps"] = r["sampler_rejected_logps"]
        for k in ("sampler_chosen_logps", "sampler_rejected_logps", "chosen_recorded", "rejected_recorded"):
            r.pop(k, None)
    return rows, report


def _reuse_blocker(rows: list[dict], max_length: int | None) -> str:
    """Why sampler log-probs cannot stand in for the reference pass ('' = they can)."""
    missing = sum("sampler_chosen_logps" not in r or "sampler_rejected_logps" not in r for r in rows)
    if missing:
        return f"{missing} of {len(rows)} pairs carry no sampler token ids/log-probs"
    if max_length is not None:
        long = sum(r["length"] > max_length for r in rows)
        if long:
            return f"{long} pairs exceed max_length {max_length} (truncation would change the sum)"
    return ""


@dataclass
class MaskedPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator, with the completion mask multiplied by herd's loss mask.

    TRL builds ``completion_mask`` (1 on response tokens) and derives everything from it: the
    labels of the fused LM head, the sums of the sigmoid term, the token mean of the NLL term,
    the reference precompute. Zeroing formatting tokens here is therefore enough for all of them.
    Examples without ``*_loss_mask`` fields pass through unchanged.
    """

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        out = super().torch_call(examples)
        if "chosen_loss_mask" not in examples[0]:
            return out
        width = out["completion_mask"].shape[1]
        masks = []
        for side in ("chosen", "rejected"):  # TRL stacks all chosen rows, then all rejected rows
            for ex in examples:
                m = [0] * len(ex["prompt_ids"]) + list(ex[f"{side}_loss_mask"])
                m = self._truncate(m)
                masks.append(m + [0] * (width - len(m)))
        out["completion_mask"] = out["completion_mask"] * torch.tensor(masks, dtype=out["completion_mask"].dtype)
        return out

    def _truncate(self, seq: list[int]) -> list[int]:
        if self.max_length is None:
            return seq
        return seq[: self.max_length] if self.truncation_mode == "keep_start" else seq[-self.max_length :]
