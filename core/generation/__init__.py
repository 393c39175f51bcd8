"""Generation backends behind one contract (:class:`GenerationBackend`): vLLM and HF generate."""

from herd.core.generation.base import (
    LLAMA3_STOP_TOKENS,
    GenerationBackend,
    Sample,
    SamplingSpec,
    sample_seed,
)


def make_backend(kind: str, model: str, **kwargs) -> GenerationBackend:
    """'vllm' (offline engine in a subprocess), 'hf' (transformers generate), or 'auto'
    (vLLM when importable, else HF)."""
    if kind == "auto":
        import importlib.util

        kind = "vllm" if importlib.util.find_spec("vllm") is not None else "hf"
    if kind == "vllm":
        from herd.core.generation.vllm import VLLMBackend

        return VLLMBackend(model, **kwargs)
    if kind == "hf":
        from herd.core.generation.hf import HFBackend

        return HFBackend(model, **kwargs)
    raise ValueError(f"unknown generation backend {kind!r} (expected 'vllm', 'hf' or 'auto')")


__all__ = ["GenerationBackend", "LLAMA3_STOP_TOKENS", "Sample", "SamplingSpec", "make_backend", "sample_seed"]
