"""Generation backends with one interface and identical output records.

``hf`` runs transformers ``generate`` (batched, left padded; CPU or GPU); ``vllm`` runs ``vllm.LLM`` with
``SamplingParams`` (LoRA through ``LoRARequest``, tensor parallelism). Both return, per prompt, ``n``
:class:`Completion` records: text, finish reason, generated token count and latency.

Sampling in ``hf`` is seeded per completion, not per batch: each row draws from its own generator, so a
completion depends on its seed and its prompt only, never on the batch it landed in. That is what makes an
interrupted and resumed run equal to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.progress import Progress
from infra.progress import progress as progress_bar


@dataclass
class SamplingConfig:
    """Decoding settings. Defaults are the paper's generative-eval settings (original code)."""

    temperature: float = 0.9
    top_p: float = 1.0
    top_k: int = 50
    max_new_tokens: int = 8192
    n: int = 1
    stop_strings: list[str] = field(default_factory=list)
    # Prompt + generation, as vLLM's max_model_len: each prompt generates at most max_context - its length
    # tokens (the original: 8192 in evaluation, 4096 in the search and the sweep). None: no cap.
    max_context: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 turns it off), got {self.top_k}")
        if self.max_new_tokens < 1 or self.n < 1:
            raise ValueError("max_new_tokens and n must be at least 1")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def budget(self, prompt_tokens: int) -> int:
        """New tokens a prompt of ``prompt_tokens`` may generate (0: the prompt alone fills the context)."""
        if self.max_context is None:
            return self.max_new_tokens
        return max(0, min(self.max_new_tokens, self.max_context - prompt_tokens))


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" (end of turn or a stop string) or "length"
    num_tokens: int
    latency_s: float
    sample_index: int = 0

    def as_record(self) -> dict[str, Any]:
        return {
            "response": self.text,
            "finish_reason": self.finish_reason,
            "num_tokens": self.num_tokens,
            "latency_s": round(self.latency_s, 4),
            "sample": self.sample_index,
        }


class GenerationBackend(Protocol):
    def generate(
        self, prompts: list[str], sampling: SamplingConfig, seeds: list[int] | None = None
    ) -> list[list[Completion]]: ...


def derive_seed(seed: int, key: str, sample: int = 0) -> int:
    """A stable 63-bit seed for one completion, from the run seed, the item id and the sample index."""
    digest = hashlib.sha256(f"{seed}\x00{key}\x00{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def stop_token_ids(tokenizer: Any, tokens: list[str]) -> list[int]:
    """The ids of the model config's stop tokens; one the vocabulary lacks is an error.

    Looked up in the vocabulary itself, not by comparing with ``unk_token_id``: a real tokenizer may use one
    token as both its unknown and its end-of-text token (SmolLM2's ``<|endoftext|>``, id 0)."""
    vocab = tokenizer.get_vocab()
    missing = [token for token in tokens if token not in vocab]
    if missing:
        raise ValueError(f"stop token {missing[0]!r} is not in the tokenizer's vocabulary")
    return [vocab[token] for token in tokens]


def cut_at_stop(text: str, stop_strings: list[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop string (the stop string itself is dropped)."""
    positions = [text.find(s) for s in stop_strings if s and s in text]
    if not positions:
        return text, False
    return text[: min(positions)], True


class _RowSampler:
    """Logits processor that samples each row with its own generator, then forces that token.

    Used with greedy decoding in ``generate``, so the argmax is the sampled token. Temperature, top-k and
    top-p are transformers' own warpers, applied in the same order as its sampling path.
    """

    def __init__(self, sampling: SamplingConfig, row_seeds: list[int], device: Any):
        import torch
        from transformers.generation.logits_process import (
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        self.warpers = [TemperatureLogitsWarper(sampling.temperature)]
        if sampling.top_k > 0:
            self.warpers.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(sampling.top_p))
        self.generators = []
        for seed in row_seeds:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed)
            self.generators.append(generator)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores = scores.float()
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores, dim=-1)
        forced = torch.full_like(scores, float("-inf"))
        for row, generator in enumerate(self.generators):
            token = torch.multinomial(probs[row], 1, generator=generator)
            forced[row, token] = 0.0
        return forced


class HFBackend:
    """transformers ``generate``: left-padded batches, stop tokens and strings, n samples per prompt."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 8,
        stop_tokens: list[str] | None = None,
        progress: bool = True,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.batch_size = batch_size
        self.progress = progress
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.eos_token_ids = sorted(set(eos + stop_token_ids(tokenizer, stop_tokens or [])))

    def generate(
        self, prompts: list[str], sampling: SamplingConfig, seeds: list[int] | None = None
    ) -> list[list[Completion]]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        seeds = seeds if seeds is not None else [derive_seed(0, str(i)) for i in range(len(prompts))]
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        results: list[list[Completion]] = []
        device = next(self.model.parameters()).device
        pad_id = self.tokenizer.pad_token_id
        # Rows are (prompt, sample) pairs; a batch holds at most batch_size rows.
        prompts_per_batch = max(1, self.batch_size // sampling.n)
        bar = progress_bar(
            total=len(prompts), desc="generate", unit="prompt", disable=not self.progress, leave=False
        )
        for start in range(0, len(prompts), prompts_per_batch):
            batch_prompts = prompts[start : start + prompts_per_batch]
            batch_seeds = seeds[start : start + prompts_per_batch]
            lengths = [len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in batch_prompts]
            budgets = [sampling.budget(length) for length in lengths]
            live = [i for i, budget in enumerate(budgets) if budget > 0]
            batch_results: list[list[Completion]] = [
                [Completion("", "length", 0, 0.0, j) for j in range(sampling.n)] for _ in batch_prompts
            ]
            if live:
                rows = [batch_prompts[i] for i in live for _ in range(sampling.n)]
                row_seeds = [derive_seed(batch_seeds[i], "row", j) for i in live for j in range(sampling.n)]
                # Every prompt carries its template's BOS already: add no special tokens.
                encoded = self.tokenizer(
                    rows, return_tensors="pt", padding=True, add_special_tokens=False
                ).to(device)
                config = GenerationConfig(
                    max_new_tokens=max(budgets[i] for i in live),
                    do_sample=False,
                    eos_token_id=self.eos_token_ids,
                    pad_token_id=pad_id,
                    stop_strings=sampling.stop_strings or None,
                )
                processors = LogitsProcessorList()
                if not sampling.greedy:
                    processors.append(_RowSampler(sampling, row_seeds, device))
                started = time.perf_counter()
                with torch.no_grad():
                    output = self.model.generate(
                        **encoded,
                        generation_config=config,
                        logits_processor=processors,
                        tokenizer=self.tokenizer if sampling.stop_strings else None,
                    )
                latency = time.perf_counter() - started
                new_tokens = output[:, encoded["input_ids"].shape[1] :]
                for r, i in enumerate(live):
                    for j in range(sampling.n):
                        # A row's tokens up to its own budget do not depend on what follows them.
                        ids = new_tokens[r * sampling.n + j].tolist()[: budgets[i]]
                        batch_results[i][j] = self._finish(ids, sampling, latency, j)
            results.extend(batch_results)
            bar.update(len(batch_prompts))
        bar.close()
        return results

    def _finish(self, ids: list[int], sampling: SamplingConfig, latency: float, sample: int) -> Completion:
        hit_eos = False
        for position, token in enumerate(ids):
            if token in self.eos_token_ids:
                ids, hit_eos = ids[: position + 1], True
                break
        else:
            pad_id = self.tokenizer.pad_token_id
            while ids and ids[-1] == pad_id and pad_id not in self.eos_token_ids:
                ids = ids[:-1]
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        text, hit_stop = cut_at_stop(text, sampling.stop_strings)
        reason = "stop" if hit_eos or hit_stop else "length"
        return Completion(
            text=text, finish_reason=reason, num_tokens=len(ids), latency_s=latency, sample_index=sample
        )


class VLLMBackend:
    """vLLM offline inference (``LLM.generate``): the same records as :class:`HFBackend`.

    Prompts go to the engine as token ids, tokenized without special tokens like the hf backend does, so a
    prompt carries exactly the BOS its chat template wrote (vLLM would add a second one to a text prompt).
    ``max_model_len`` defaults to the sampling's ``max_context`` at the first call. Create it under
    ``if __name__ == "__main__":`` (the engine starts worker processes).
    """

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        max_model_len: int | None = None,
        stop_tokens: list[str] | None = None,
        max_lora_rank: int = 64,
        gpu_memory_utilization: float | None = None,
        max_num_seqs: int | None = None,
        enforce_eager: bool = False,
        seed: int = 0,
        candidates: bool = False,
    ):
        import os

        from vllm import LLM

        if candidates:  # the layer-swapping function travels to the engine by pickle
            os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
        self.llm = LLM(
            **engine_arguments(
                model,
                adapter=adapter,
                tensor_parallel_size=tensor_parallel_size,
                dtype=dtype,
                max_model_len=max_model_len,
                max_lora_rank=max_lora_rank,
                gpu_memory_utilization=gpu_memory_utilization,
                max_num_seqs=max_num_seqs,
                enforce_eager=enforce_eager,
                seed=seed,
                candidates=candidates,
            )
        )
        self.candidates = candidates
        self.num_layers = int(self.llm.llm_engine.model_config.hf_config.num_hidden_layers)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.stop_token_ids = stop_token_ids(self.tokenizer, stop_tokens or [])
        self.lora_request = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest("adapter", 1, adapter)

    @contextlib.contextmanager
    def layers_removed(self, removed: list[int]) -> Iterator[VLLMBackend]:
        """A pruning candidate inside the engine: ``removed`` layers skipped, restored on exit."""
        if not self.candidates:
            raise ValueError("this engine was not started for in-engine candidates (candidates=True)")
        gone = set(removed)
        self._keep([i for i in range(self.num_layers) if i not in gone])
        try:
            yield self
        finally:
            self._keep(None)

    def _keep(self, kept: list[int] | None) -> None:
        import functools

        from infra.vllm_layers import keep_decoder_layers

        self.llm.apply_model(functools.partial(keep_decoder_layers, kept=kept))
        self.llm.reset_prefix_cache()

    def generate(
        self, prompts: list[str], sampling: SamplingConfig, seeds: list[int] | None = None
    ) -> list[list[Completion]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        seeds = seeds if seeds is not None else [derive_seed(0, str(i)) for i in range(len(prompts))]
        context = min(sampling.max_context or self.max_model_len, self.max_model_len)
        token_ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        budgets = [max(0, min(sampling.max_new_tokens, context - len(ids))) for ids in token_ids]
        live = [i for i, budget in enumerate(budgets) if budget > 0]
        results: list[list[Completion]] = [
            [Completion("", "length", 0, 0.0, j) for j in range(sampling.n)] for _ in prompts
        ]
        if not live:
            return results
        params = [
            SamplingParams(
                n=sampling.n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k if sampling.top_k > 0 else -1,
                max_tokens=budgets[i],
                stop=sampling.stop_strings or None,
                stop_token_ids=self.stop_token_ids or None,
                seed=seeds[i] % (2**31),
            )
            for i in live
        ]
        started = time.perf_counter()
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=token_ids[i]) for i in live],
            params,
            lora_request=self.lora_request,
            use_tqdm=Progress,  # per-request progress, as lines in a batch log
        )
        latency = (time.perf_counter() - started) / max(1, len(live))
        for i, output in zip(live, outputs):
            results[i] = [
                Completion(
                    text=choice.text,
                    finish_reason="length" if choice.finish_reason == "length" else "stop",
                    num_tokens=len(choice.token_ids),
                    latency_s=latency,
                    sample_index=j,
                )
                for j, choice in enumerate(output.outputs)
            ]
        return results


BACKENDS = ("auto", "hf", "vllm")


def resolve_backend(name: str) -> str:
    """``auto``: vLLM where a CUDA device and vLLM are there (a GPU node), else transformers (``hf``)."""
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}")
    if name == "vllm":
        from infra.devices import require_cuda, vllm_build

        if vllm_build() == "cuda":  # vLLM's CUDA build cannot fall back to a CPU
            require_cuda("--backend vllm runs vLLM's CUDA build")
    if name != "auto":
        return name
    import importlib.util

    import torch

    return "vllm" if torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None else "hf"


def engine_arguments(
    model: str,
    *,
    adapter: str | None = None,
    tensor_parallel_size: int = 1,
    dtype: str = "auto",
    max_model_len: int | None = None,
    max_lora_rank: int = 64,
    gpu_memory_utilization: float | None = None,
    max_num_seqs: int | None = None,
    enforce_eager: bool = False,
    seed: int = 0,
    candidates: bool = False,
) -> dict[str, Any]:
    """The keyword arguments of vLLM's ``LLM`` (its ``EngineArgs``) for one engine, the site's settings
    (``configs/vllm.yaml``) filling what the caller leaves unset."""
    site = vllm_site_settings()
    arguments: dict[str, Any] = {
        "model": model,
        "tokenizer": model,
        "tensor_parallel_size": tensor_parallel_size,
        "dtype": dtype,
        "max_model_len": max_model_len,
        "enable_lora": adapter is not None,
        "max_lora_rank": max_lora_rank,
        "gpu_memory_utilization": gpu_memory_utilization or float(site["gpu_memory_utilization"]),
        "enforce_eager": enforce_eager,
        "seed": seed,
    }
    if (max_num_seqs or site["max_num_seqs"]) is not None:
        arguments["max_num_seqs"] = int(max_num_seqs or site["max_num_seqs"])
    if candidates:
        # Pruning candidates are made inside the engine (infra/vllm_layers.py): the forward must run eagerly,
        # uncompiled, without a stale prefix cache.
        arguments.update(enforce_eager=True, compilation_config={"mode": 0}, enable_prefix_caching=False)
    return arguments


def vllm_site_settings() -> dict[str, Any]:
    """``configs/vllm.yaml`` (memory share, sequences in flight) with the environment's overrides."""
    import os

    from infra.config import load_yaml
    from infra.paths import REPO_ROOT

    settings = {
        "gpu_memory_utilization": 0.9,
        "max_num_seqs": None,
        **load_yaml(REPO_ROOT / "configs" / "vllm.yaml"),
    }
    for key in settings:
        value = os.environ.get(f"LPR_VLLM_{key.upper()}", "")
        if value:
            settings[key] = float(value) if key == "gpu_memory_utilization" else int(value)
    return settings


@dataclass
class BackendConfig:
    backend: str = "hf"
    batch_size: int = 8
    dtype: str = "auto"
    device: str = "auto"
    tensor_parallel_size: int = 1
    max_model_len: int | None = None  # vllm: the engine's context (prompt + generation)


def make_backend(
    model: str, config: BackendConfig, *, adapter: str | None = None, stop_tokens: list[str] | None = None
) -> GenerationBackend:
    """Build the backend named in ``config`` for a model directory or hub id (plus an optional adapter)."""
    if resolve_backend(config.backend) == "hf":
        from infra.modeling import load_model, load_tokenizer

        loaded = load_model(model, adapter=adapter, dtype=config.dtype, device=config.device)
        tokenizer = load_tokenizer(adapter if adapter and _has_tokenizer(adapter) else model)
        return HFBackend(loaded, tokenizer, batch_size=config.batch_size, stop_tokens=stop_tokens)
    if resolve_backend(config.backend) == "vllm":
        return VLLMBackend(
            model,
            adapter=adapter,
            tensor_parallel_size=config.tensor_parallel_size,
            dtype=config.dtype,
            max_model_len=config.max_model_len,
            stop_tokens=stop_tokens,
        )
    raise ValueError(f"backend {config.backend!r}: expected hf or vllm")


def _has_tokenizer(path: str) -> bool:
    from pathlib import Path

    return (Path(path) / "tokenizer_config.json").exists()
