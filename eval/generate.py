"""Eval generation through herd.core.generation: render prompt sets, generate, keep the samples.

Greedy decoding for every set (a metric of the policy's single best guess is reproducible and
comparable across rounds); the verifier set is additionally sampled ``num_samples`` times at a
temperature for pass@k. All greedy prompts go to the engine in one call so vLLM can batch them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from herd.core.chat import render_with
from herd.core.generation import GenerationBackend, Sample, SamplingSpec, make_backend
from herd.eval.config import EvalConfig, GenerationSettings


@dataclass
class Generated:
    """Prompt rows and their samples per set ('general', 'verifier', 'verifier_sampled', ...)."""

    rows: dict[str, list[dict]] = field(default_factory=dict)
    samples: dict[str, list[list[Sample]]] = field(default_factory=dict)
    system: dict[str, str | None] = field(default_factory=dict)

    def _prefix(self, name: str, row: dict) -> list[dict]:
        sys_prompt = self.system.get(name)
        msgs = [dict(m) for m in row["messages"]]
        if sys_prompt and msgs[0]["role"] != "system":
            msgs = [{"role": "system", "content": sys_prompt}] + msgs
        return msgs

    def conversations(self, name: str) -> list[list[dict]]:
        """One (prompt + assistant response) conversation per sample, prompts in order."""
        return [
            self._prefix(name, row) + [{"role": "assistant", "content": s.text}]
            for row, samples in zip(self.rows[name], self.samples[name])
            for s in samples
        ]

    def texts(self, name: str) -> list[str]:
        return [s.text for samples in self.samples[name] for s in samples]

    @staticmethod
    def n_tokens(sample: Sample) -> int:
        """Response length in tokens, not counting the stop token."""
        return len(sample.token_ids) - (1 if sample.finish_reason == "stop" and sample.token_ids else 0)


def open_backend(settings: GenerationSettings, model_path: str) -> GenerationBackend:
    """Open an engine for ``model_path``; the HF backend gets the configured batch size."""
    kind = settings.backend
    if kind == "auto":
        kind = "vllm" if importlib.util.find_spec("vllm") is not None else "hf"
    if kind == "hf":
        return make_backend("hf", model_path, batch_size=settings.batch_size)
    return make_backend(kind, model_path, seed=settings.seed)


def _system_prompts(cfg: EvalConfig) -> dict[str, str | None]:
    return {
        "general": cfg.reward.system_prompt,
        "verifier": cfg.verifier.system_prompt,
        "verifier_sampled": cfg.verifier.system_prompt,
        "unsafe": cfg.safety.system_prompt,
        "safe": cfg.safety.system_prompt,
    }


def generate_sets(
    backend: GenerationBackend,
    tokenizer,
    sets: dict[str, list[dict]],
    cfg: EvalConfig,
    sampled_verifier: bool,
) -> Generated:
    """Greedy responses for every set in ``sets``; plus pass@k samples of 'verifier' if asked."""
    out = Generated(system=_system_prompts(cfg))
    names = list(sets)
    prompts, keys, owners = [], [], []
    for name in names:
        out.rows[name] = sets[name]
        for row in sets[name]:
            prompts.append(render_with(tokenizer, out._prefix(name, row), add_generation_prompt=True))
            keys.append(f"{name}:{row['id']}")
            owners.append(name)
    g = cfg.generation
    greedy = SamplingSpec(n=1, max_new_tokens=g.max_new_tokens, temperature=0.0, seed=g.seed)
    results = backend.generate(prompts, greedy, prompt_keys=keys) if prompts else []
    for name in names:
        out.samples[name] = [r for r, o in zip(results, owners) if o == name]
    if sampled_verifier and "verifier" in sets:
        v = cfg.verifier
        spec = SamplingSpec(n=v.num_samples, max_new_tokens=g.max_new_tokens, temperature=v.temperature, seed=g.seed)
        vprompts = [p for p, o in zip(prompts, owners) if o == "verifier"]
        vkeys = [k for k, o in zip(keys, owners) if o == "verifier"]
        out.rows["verifier_sampled"] = sets["verifier"]
        out.samples["verifier_sampled"] = backend.generate(vprompts, spec, prompt_keys=vkeys)
    return out
