"""Hugging Face ``generate`` backend: the fallback for machines without vLLM, and the anchor
that vLLM's greedy tokens are checked against.

Sampling is seeded per batch (from the base seed and the batch's first prompt key), so the same
shard gives the same samples on a rerun; unlike the vLLM backend's per-sample seeds, a prompt's
samples do depend on which prompts share its batch.
"""

from __future__ import annotations

from typing import Sequence

import torch

from herd.core.chat import stop_token_ids
from herd.core.generation.base import Sample, SamplingSpec, sample_seed
from herd.core.models import ModelSpec, load_causal_lm, load_tokenizer


class HFBackend:
    """Batched ``model.generate`` with raw (temperature-1) per-token log-probs recorded."""

    def __init__(self, model: ModelSpec | str, batch_size: int = 16, model_obj=None, tokenizer=None):
        spec = ModelSpec(model) if isinstance(model, str) else model
        self.tokenizer = tokenizer or load_tokenizer(spec.path)
        self.model = model_obj if model_obj is not None else load_causal_lm(spec)
        self.batch_size = batch_size

    def close(self) -> None:
        self.model = None

    def _stop_ids(self, spec: SamplingSpec) -> list[int]:
        ids = [self.tokenizer.convert_tokens_to_ids(t) for t in spec.stop_tokens]
        return [i for i in ids if i is not None] or stop_token_ids(self.tokenizer)

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        spec: SamplingSpec,
        prompt_keys: Sequence[int | str] | None = None,
    ) -> list[list[Sample]]:
        keys = list(prompt_keys) if prompt_keys is not None else list(range(len(prompts)))
        out: list[list[Sample]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = list(prompts[start : start + self.batch_size])
            out.extend(self._generate_batch(batch, spec, keys[start]))
        return out

    def _generate_batch(self, prompts: list[str], spec: SamplingSpec, key) -> list[list[Sample]]:
        tok, model = self.tokenizer, self.model
        stop_ids = self._stop_ids(spec)
        tok.padding_side = "left"
        enc = tok(prompts, add_special_tokens=False, return_tensors="pt", padding=True).to(model.device)
        if not spec.greedy:
            torch.manual_seed(sample_seed(spec.seed, key, 0))
        gen = model.generate(
            **enc,
            do_sample=not spec.greedy,
            temperature=spec.temperature if not spec.greedy else None,
            top_p=spec.top_p if not spec.greedy else None,
            top_k=None if not spec.greedy else None,
            max_new_tokens=spec.max_new_tokens,
            num_return_sequences=spec.n,
            eos_token_id=stop_ids,
            pad_token_id=tok.pad_token_id,
            return_dict_in_generate=True,
            output_logits=True,
        )
        new = gen.sequences[:, enc["input_ids"].shape[1] :]
        # Raw logits -> log-probs of the chosen tokens (temperature 1, before top-p), as vLLM reports.
        logits = torch.stack(gen.logits, dim=1).float()
        chosen = torch.log_softmax(logits, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
        results: list[list[Sample]] = []
        for p in range(len(prompts)):
            samples = []
            for k in range(spec.n):
                row = p * spec.n + k
                ids, lps = [], []
                finish = "length"
                for t, tid in enumerate(new[row].tolist()):
                    ids.append(tid)
                    lps.append(float(chosen[row, t]))
                    if tid in stop_ids:
                        finish = "stop"
                        break
                body = ids[:-1] if finish == "stop" else ids
                text = tok.decode(body, skip_special_tokens=True)
                samples.append(Sample(text, ids, lps, finish, index=k))
            results.append(samples)
        return results
