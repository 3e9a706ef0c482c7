"""Generate answers to task items with a backend and score them: the core that the eval CLI and the
pruner's iterative search and single-layer sweep share."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from eval.scorers import CodeOptions, score_responses
from eval.tasks import TaskItem, is_code_task, load_task, registry, task_kind
from infra.generation import GenerationBackend, HFBackend, SamplingConfig, VLLMBackend, derive_seed
from infra.model_spec import ModelSpec
from infra.prompts import render_prompt
from infra.task_registry import task_context


def parse_data_overrides(entries: list[str]) -> dict[str, str]:
    """``["gsm8k=path", ...]`` -> ``{"gsm8k": "path"}``; a malformed entry is an error naming it."""
    overrides = {}
    for entry in entries:
        task, sep, path = entry.partition("=")
        if not sep or not task or not path:
            raise ValueError(f"--data {entry!r}: expected <task>=<file>")
        overrides[task.strip()] = path.strip()
    return overrides


@dataclass
class TaskRun:
    task: str
    items: list[TaskItem]
    prompts: list[str] = field(default_factory=list)


def prepare(spec: ModelSpec, tokenizer: Any, task: str, items: list[TaskItem]) -> TaskRun:
    run = TaskRun(task, items)
    for item in items:
        run.prompts.append(render_prompt(tokenizer, spec, task, item.fields))
    return run


def item_records(run: TaskRun, generations: list[dict[str, Any]], scores: list[dict[str, Any]]) -> list[dict]:
    records = []
    for item, prompt, generation, score in zip(run.items, run.prompts, generations, scores):
        records.append({"id": item.id, "prompt": prompt, **generation, **score})
    return records


def summarize(task: str, records: list[dict[str, Any]], elapsed_s: float | None = None) -> dict[str, Any]:
    """Per-task results: mean score, n, generated tokens, tokens/s and task-specific extras."""
    n = len(records)
    tokens = sum(int(r.get("num_tokens") or 0) for r in records)
    summary: dict[str, Any] = {
        "task": task,
        "score": sum(r["score"] for r in records) / n if n else 0.0,
        "n": n,
        "generated_tokens": tokens,
        "mean_generated_tokens": tokens / n if n else 0.0,
    }
    if elapsed_s:
        summary["tokens_per_s"] = tokens / elapsed_s
    if task_kind(task) == "summary":
        for name in ("rouge1", "rouge2", "rougeL"):
            summary[name] = sum(r[name] for r in records) / n if n else 0.0
    if is_code_task(task):
        summary["outcomes"] = dict(Counter(r["outcome"] for r in records))
    if any("finish_reason" in r for r in records):
        summary["finish_reasons"] = dict(Counter(r.get("finish_reason") for r in records))
    return summary


def task_sampling(
    spec: ModelSpec,
    use: str,
    *,
    model: str | None = None,
    max_context: int | None = None,
    **settings: Any,
) -> SamplingConfig:
    """Decoding for ``use`` (eval or search): the registry's stop strings, the model's own stop strings, the
    context of :func:`task_context`, then ``settings`` (temperature, top_p, top_k, max_new_tokens, ...)."""
    stops = list(dict.fromkeys([*registry().stop_strings, *spec.stop_strings]))
    context = task_context(spec, use, model=model, requested=max_context)
    return SamplingConfig(stop_strings=stops, max_context=context, **settings)


def generate_and_score(
    backend: GenerationBackend,
    run: TaskRun,
    sampling: SamplingConfig,
    seed: int,
    code_options: CodeOptions | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    return generate_and_score_tasks(backend, [run], sampling, seed, code_options, progress)[run.task]


def generate_and_score_tasks(
    backend: GenerationBackend,
    runs: list[TaskRun],
    sampling: SamplingConfig,
    seed: int,
    code_options: CodeOptions | None = None,
    progress: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """Every task's prompts in one ``generate`` call (the search and the sweep score a few items of several
    tasks per candidate: one call fills the batches that one call per task leaves half empty), then each
    task's responses scored. A completion's sampling depends on (seed, item id), not on its batch, so the
    records are those of one call per task up to the float effects of padding."""
    prompts = [prompt for run in runs for prompt in run.prompts]
    seeds = [derive_seed(seed, item.id) for run in runs for item in run.items]
    completions = backend.generate(prompts, sampling, seeds)
    results: dict[str, list[dict[str, Any]]] = {}
    start = 0
    for run in runs:
        generations = [c[0].as_record() for c in completions[start : start + len(run.prompts)]]
        start += len(run.prompts)
        scores = score_responses(
            run.task, run.items, [g["response"] for g in generations], code_options, progress=progress
        )
        results[run.task] = item_records(run, generations, scores)
    return results


def build_scorer(
    spec: ModelSpec,
    tasks: list[str] | None = None,
    *,
    n_items: int | None = None,
    data: list[str] | None = None,
    seed: int = 0,
    max_new_tokens: int = 8192,
    batch_size: int = 8,
    sampling: SamplingConfig | None = None,
    code_options: CodeOptions | None = None,
    temperature: float = 0.9,
    top_p: float = 1.0,
    top_k: int = 50,
    model: str | None = None,
):
    """A scorer for the pruner: ``scorer(model, tokenizer) -> {task: {"score", "items"}}``.

    Items and decoding are the search's, as the original ran them: by default GSM8K train, 100 of
    HumanEval+ and 100 of XSUM validation (the registry's ``search`` selection), context 4096, the
    evaluation's sampling (temperature 0.9, top-k 50) and stop strings."""
    overrides = parse_data_overrides(data or [])
    tasks = list(tasks or registry().search_tasks)
    task_items = {
        task: load_task(task, data=overrides.get(task), use="search", max_items=n_items) for task in tasks
    }
    sampling = sampling or task_sampling(
        spec,
        "search",
        model=model,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
    )
    code_options = code_options or CodeOptions(timeout_s=registry().code_timeout_s)

    def scorer(model: Any, tokenizer: Any) -> dict[str, dict[str, Any]]:
        """``model``: a transformers model, or a vLLM backend (its engine generates)."""
        if isinstance(model, VLLMBackend):
            backend: GenerationBackend = model
        else:
            backend = HFBackend(
                model, tokenizer, batch_size=batch_size, stop_tokens=spec.stop_tokens, progress=False
            )
        runs = [prepare(spec, tokenizer, task, items) for task, items in task_items.items()]
        records = generate_and_score_tasks(backend, runs, sampling, seed, code_options, progress=False)
        return {task: {"score": summarize(task, rs)["score"], "items": rs} for task, rs in records.items()}

    return scorer
