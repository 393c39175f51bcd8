"""Eval generation through herd.core.generation: render prompt sets, generate, keep the samples.

Greedy decoding for every set (a metric of the policy's single best guess is reproducible and
comparable across rounds); the verifier set is additionally sampled ``num_samples`` times at a
temperature for pass@k. All greedy prompts go to the engine in one call so vLLM can batch them.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from herd.core.artifacts import atomic_write_json, hash_config
from herd.core.chat import render_with
from herd.core.config import to_dict
from herd.core.generation import GenerationBackend, Sample, SamplingSpec, make_backend
from herd.core.models import load_tokenizer
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


GENERATIONS_FILE = "generations.json"


def _fingerprint(model_path: str | Path | None) -> list | None:
    """Names, sizes and mtimes of a checkpoint's files: cheap, and it changes when the directory
    is rewritten by a retrained model (content hashing multi-GB weights on every eval is not)."""
    if model_path is None:
        return None
    p = Path(model_path)
    if not p.is_dir():
        return [str(model_path)]
    return [str(p.resolve())] + sorted(
        [f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
    )


def _cache_key(cfg: EvalConfig, model_path, baseline_path, sets: dict[str, list[dict]]) -> str:
    v = cfg.verifier
    return hash_config({
        "generation": to_dict(cfg.generation),
        "pass_at_k": [v.num_samples, v.temperature] if v.pass_at_k else None,
        "system": _system_prompts(cfg),
        "sets": sets,
        "model": _fingerprint(model_path),
        "baseline": _fingerprint(baseline_path),
    })


def _dump(gen: Generated | None) -> dict | None:
    if gen is None:
        return None
    return {name: [[[s.text, s.token_ids, s.finish_reason, s.index] for s in ss] for ss in gen.samples[name]]
            for name in gen.samples}


def _load(data: dict | None, sets: dict[str, list[dict]], cfg: EvalConfig) -> Generated | None:
    if data is None:
        return None
    gen = Generated(system=_system_prompts(cfg))
    for name, per_prompt in data.items():
        gen.rows[name] = sets["verifier" if name == "verifier_sampled" else name]
        # log-probs are not kept: no eval metric uses them
        gen.samples[name] = [[Sample(t, ids, [], fr, index=i) for t, ids, fr, i in ss] for ss in per_prompt]
    return gen


def _general_key(cfg: EvalConfig, model_path, rows: list[dict]) -> str:
    """Identity of one checkpoint's greedy responses to the general prompts."""
    return hash_config({"generation": to_dict(cfg.generation), "system": cfg.reward.system_prompt,
                        "rows": rows, "model": _fingerprint(model_path)})


def _baseline_from_previous(cfg: EvalConfig, baseline_path, sets, previous: Mapping | None) -> Generated | None:
    """The baseline's responses as recorded by the previous round's eval, when that eval
    evaluated this very checkpoint on the same general prompts with the same settings.

    In the round loop the baseline *is* the previous round's policy, so its responses already
    exist; reusing them saves an engine start and, on a GPU, a second engine beside the loop's.
    """
    if previous is None or not previous.get("samples_file"):
        return None
    cache = Path(previous["samples_file"]).parent / GENERATIONS_FILE
    if not cache.exists():
        return None
    data = json.loads(cache.read_text(encoding="utf-8"))
    if data.get("general_key") != _general_key(cfg, baseline_path, sets["general"]):
        return None
    return _load({"general": data["policy"]["general"]}, sets, cfg)


def generate_all(
    cfg: EvalConfig, model_path, baseline_path, sets: dict[str, list[dict]], backend, cache: Path,
    previous: Mapping | None = None,
) -> tuple[Generated, Generated | None, str | None]:
    """(policy, baseline, baseline source) generations: the policy's first, then — with the policy
    engine closed — the baseline's on the 'general' set, taken from the previous round's eval
    when it recorded them. Reuses ``cache`` when it was written for the same config, prompts and
    checkpoints; writes it (atomically) otherwise."""
    key = _cache_key(cfg, model_path, baseline_path, sets)
    if cache.exists():
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data.get("key") == key:
            return _load(data["policy"], sets, cfg), _load(data["baseline"], sets, cfg), data.get("baseline_source")
    own = backend is None
    backend = backend or open_backend(cfg.generation, str(model_path))
    try:
        policy = generate_sets(backend, load_tokenizer(str(model_path)), sets, cfg, bool(cfg.verifier.pass_at_k))
    finally:
        if own:
            backend.close()
    baseline, source = None, None
    if baseline_path and "general" in sets and (cfg.win_rate.enabled or cfg.length.enabled):
        baseline, source = _baseline_from_previous(cfg, baseline_path, sets, previous), "previous_round"
        if baseline is None:
            bb = open_backend(cfg.generation, str(baseline_path))
            try:
                baseline = generate_sets(bb, load_tokenizer(str(baseline_path)), {"general": sets["general"]}, cfg, False)
            finally:
                bb.close()
            source = "generated"
    general_key = _general_key(cfg, model_path, sets["general"]) if "general" in sets else None
    atomic_write_json(cache, {"key": key, "general_key": general_key, "baseline_source": source,
                              "policy": _dump(policy), "baseline": _dump(baseline)})
    return policy, baseline, source
