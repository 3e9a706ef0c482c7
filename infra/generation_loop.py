"""The one resumable generation loop: evaluation and self-generation write their completions through it.

Records go to an append-only JSONL keyed by ``(id, sample)``; a rerun continues after the last complete
record, and a completion depends only on (seed, id, sample), so a resumed run writes what an uninterrupted
one would. Beside the file, ``<file>.meta.json`` records what produced it (model, adapter, prompts,
decoding, seed, backend): resuming under other settings is refused unless ``overwrite`` starts afresh, so
old responses are never relabelled as a new model's. ``<file>.lock`` is held while the loop writes, so two
runs never fill one file at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError
from infra.files import JsonlAppender, atomic_write_json, load_jsonl, output_lock, repair_and_scan
from infra.generation import (
    BackendConfig,
    GenerationBackend,
    SamplingConfig,
    derive_seed,
    make_backend,
    resolve_backend,
)
from infra.progress import progress as progress_bar
from infra.resume import check_resume


@dataclass
class GenerationRequest:
    id: str
    prompt: str  # the full text the model continues
    fields: dict[str, Any] = field(default_factory=dict)  # copied into each record


@dataclass
class LoopStats:
    requested: int = 0
    already_done: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float | None:
        return self.generated_tokens / self.seconds if self.generated_tokens and self.seconds else None


def text_digest(*texts: str) -> str:
    """A short digest of prompt material (templates, chat template) for a run signature."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def run_signature(
    *, model: str | None, adapter: str | None, sampling: SamplingConfig, seed: int, backend: str, **extra: Any
) -> dict[str, Any]:
    """What produced a generation file; local paths are made absolute so a cwd change is no difference."""

    def where(path: str | None) -> str | None:
        return str(Path(path).resolve()) if path and Path(path).exists() else path

    return {
        "model": where(model),
        "adapter": where(adapter),
        "backend": backend,
        "seed": seed,
        "sampling": dataclasses.asdict(sampling),
        **extra,
    }


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _check_signature(path: Path, signature: dict[str, Any]) -> None:
    meta = meta_path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    if not meta.exists():
        raise ConfigError(
            f"{path}: holds generations but not what produced them ({meta.name} is missing); "
            "pass --overwrite to regenerate"
        )
    check_resume(meta, signature, remedy="pass --overwrite to regenerate (or another output)", write=False)


def lazy_backend(model: str, config: BackendConfig, **kwargs: Any) -> Callable[[], GenerationBackend]:
    """A factory that makes the backend on its first call and returns the same one after, so a finished file
    needs no model and several files share one engine."""
    made: list[GenerationBackend] = []

    def factory() -> GenerationBackend:
        if not made:
            made.append(make_backend(model, config, **kwargs))
        return made[0]

    return factory


def loop_chunk(config: BackendConfig, prompts_per_chunk: int | None = None) -> int:
    """Prompts per round of the loop: the batch on the HF backend (a record is written per batch), all of
    them at once on vLLM (it schedules its own batches)."""
    return (prompts_per_chunk or config.batch_size) if resolve_backend(config.backend) == "hf" else 1 << 14


def generate_resumable(
    backend_factory: Any,
    requests: list[GenerationRequest],
    sampling: SamplingConfig,
    seed: int,
    path: str | Path,
    *,
    signature: dict[str, Any],
    overwrite: bool = False,
    chunk: int = 64,
    desc: str = "generate",
    record_latency: bool = True,
) -> tuple[list[dict[str, Any]], LoopStats]:
    """Generate every ``(request, sample)`` missing from ``path``; return all records in request order.

    ``backend_factory`` is a backend or a callable that makes one; it is called only when something is
    left to generate, so a finished file needs no model.
    """
    path = Path(path)
    stats = LoopStats(requested=len(requests))
    with output_lock(path.with_name(path.name + ".lock"), path):
        if overwrite:
            path.unlink(missing_ok=True)
        _check_signature(path, signature)
        atomic_write_json(meta_path(path), signature)
        done = repair_and_scan(path, ("id", "sample"))
        todo = [r for r in requests if any((r.id, j) not in done for j in range(sampling.n))]
        stats.already_done = len(requests) - len(todo)
        if todo:
            backend: GenerationBackend = backend_factory() if callable(backend_factory) else backend_factory
            if hasattr(backend, "progress"):
                backend.progress = False  # one bar for the whole loop, below
            started = time.perf_counter()
            bar = progress_bar(total=len(todo), desc=desc, unit="prompt")
            with JsonlAppender(path) as out:
                for start in range(0, len(todo), max(1, chunk)):
                    batch = todo[start : start + chunk]
                    seeds = [derive_seed(seed, request.id) for request in batch]
                    completions = backend.generate([r.prompt for r in batch], sampling, seeds)
                    rows = [
                        {"id": request.id, **request.fields, **completion.as_record()}
                        for request, samples in zip(batch, completions)
                        for completion in samples
                        if (request.id, completion.sample_index) not in done
                    ]
                    if not record_latency:
                        for row in rows:
                            row.pop("latency_s", None)
                    out.write_many(rows)
                    stats.generated_tokens += sum(row["num_tokens"] for row in rows)
                    bar.update(len(batch))
                    elapsed = time.perf_counter() - started
                    bar.set_postfix(tok_s=f"{stats.generated_tokens / max(elapsed, 1e-9):.1f}")
            bar.close()
            stats.seconds = time.perf_counter() - started
        by_key = {(r["id"], r.get("sample", 0)): r for r in load_jsonl(path)} if path.exists() else {}
    records = [by_key[(r.id, j)] for r in requests for j in range(sampling.n) if (r.id, j) in by_key]
    return records, stats
