"""The generation contract shared by every backend.

Rejection sampling, evaluation and the guard all generate through this one interface, so that
a machine without vLLM (or a test) can swap in the Hugging Face backend and get the same records.
A :class:`Sample` keeps token ids and per-token log-probs because DPO reuses them as reference
log-probs when the sampler *is* the reference model (it saves the reference forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

#: Llama 3 stop tokens (FORMATS.md): generation ends at any of them.
LLAMA3_STOP_TOKENS: tuple[str, ...] = ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")


@dataclass(frozen=True)
class SamplingSpec:
    """How to sample. Defaults follow the Llama 3 rejection-sampling set-up (fixed max length).

    ``seed`` makes sampling reproducible: each (prompt index, sample index) pair gets its own
    derived seed, so the samples of a prompt do not depend on which other prompts share the batch
    (this is what lets a killed sampling run resume shard by shard with identical results).
    """

    n: int = 1
    """Samples per prompt (K)."""
    max_new_tokens: int = 256
    """Fixed maximum output length; a sample that hits it has finish_reason 'length'."""
    temperature: float = 1.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    seed: int = 0
    """Base seed; per-sample seeds derive from it (see :func:`sample_seed`)."""
    stop_tokens: tuple[str, ...] = LLAMA3_STOP_TOKENS
    """Special tokens that end a sample (kept as the last token id, excluded from ``text``)."""

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Sample:
    """One generated completion.

    ``token_ids`` are the generated ids including the stop token when one was produced;
    ``logprobs[i]`` is log p(token_ids[i] | prompt, token_ids[:i]) under the sampling model at
    temperature 1 (the unmodified distribution), so it can serve as a reference log-prob.
    """

    text: str
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str
    """'stop' (a stop token ended it) or 'length' (hit max_new_tokens: truncated)."""
    index: int = 0
    """Which of the K samples of its prompt this is."""

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


def sample_seed(base_seed: int, prompt_key: int | str, sample_index: int) -> int:
    """A 31-bit seed for one sample, independent of batch composition.

    Derived by hashing so neighbouring prompt keys do not get correlated streams.
    """
    import hashlib

    digest = hashlib.sha256(f"{base_seed}:{prompt_key}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class GenerationBackend(Protocol):
    """Prompts (already rendered to text, including the assistant header) in; K samples out."""

    def generate(
        self,
        prompts: Sequence[str],
        spec: SamplingSpec,
        prompt_keys: Sequence[int | str] | None = None,
    ) -> list[list[Sample]]:
        """Return ``len(prompts)`` lists of ``spec.n`` samples each.

        ``prompt_keys`` (default: the prompt's position) feed :func:`sample_seed`; pass stable
        prompt ids so a prompt's samples are the same whichever shard or batch it lands in.
        """
        ...

    def close(self) -> None:
        """Release the engine (and its memory) before training starts."""
        ...


@dataclass
class GenerationRequest:
    """Serializable form of a generate call, used to ship work to the vLLM subprocess."""

    prompts: list[str]
    spec: SamplingSpec
    prompt_keys: list[int | str] = field(default_factory=list)
