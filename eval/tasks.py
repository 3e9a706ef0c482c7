"""Task data: load, sample and normalize GSM8K, HumanEval+, MBPP+ and XSUM items.

Sources are hub datasets or local files in the hub schema (or, for HumanEval+ and MBPP+, evalplus's release
schema). ``HUMANEVAL_OVERRIDE_PATH`` / ``MBPP_OVERRIDE_PATH`` (evalplus's own variables) are honoured too.
Item ids: the dataset's ``task_id`` where it has one, else ``<task>/<index in the source split>``.
Sampling follows the original code: at most 1,000 items, drawn as ``datasets.Dataset.shuffle(seed)`` does
(a NumPy ``default_rng(seed)`` permutation), GSM8K with seed 1234 and XSUM with seed 42.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infra.datasets import load_records
from infra.paths import cache_dir


@dataclass(frozen=True)
class TaskSource:
    hub_id: str
    hub_config: str | None
    split: str
    sample_seed: int | None
    override_env: str | None = None
    kind: str = ""  # how items are read and scored: math, humaneval, mbpp or summary


def _toy_source(task: str, kind: str) -> TaskSource:
    """A toy task (infra/toy_tasks.py); its items are written by ``python -m infra.toy_model``."""
    return TaskSource(str(cache_dir() / "toy" / "data" / f"{task}.jsonl"), None, "test", None, None, kind)


SOURCES = {
    "gsm8k": TaskSource("openai/gsm8k", "main", "test", 1234, kind="math"),
    "humaneval": TaskSource(
        "evalplus/humanevalplus", None, "test", None, "HUMANEVAL_OVERRIDE_PATH", kind="humaneval"
    ),
    "mbpp": TaskSource("evalplus/mbppplus", None, "test", None, "MBPP_OVERRIDE_PATH", kind="mbpp"),
    "xsum": TaskSource("EdinburghNLP/xsum", None, "test", 42, kind="summary"),
    # Toy stand-ins for the CPU toy study, in the same schemas and scored the same way.
    "toy_arithmetic": _toy_source("toy_arithmetic", "math"),
    "toy_brackets": _toy_source("toy_brackets", "humaneval"),
    "toy_copy": _toy_source("toy_copy", "summary"),
}
GENERATIVE_TASKS = tuple(SOURCES)
CODE_KINDS = ("humaneval", "mbpp")


def task_kind(task: str) -> str:
    if task not in SOURCES:
        raise ValueError(f"unknown task {task!r} (known: {', '.join(SOURCES)})")
    return SOURCES[task].kind


def is_code_task(task: str) -> bool:
    return task in SOURCES and SOURCES[task].kind in CODE_KINDS


DEFAULT_MAX_ITEMS = 1000


@dataclass
class TaskItem:
    id: str
    task: str
    fields: dict[str, Any] = field(default_factory=dict)  # what the prompt template may use, and the gold


def sample_indices(n: int, max_items: int | None, seed: int | None) -> list[int]:
    """Indices of the evaluated items: all in order, or a seeded shuffle's first ``max_items``."""
    if max_items is None or max_items >= n:
        if seed is None:
            return list(range(n))
    if seed is None:
        return list(range(min(n, max_items or n)))
    order = np.random.default_rng(seed).permutation(n).tolist()
    return order[: max_items or n]


def _mbpp_fields(record: dict[str, Any]) -> dict[str, Any]:
    """One MBPP+ item from either the hub schema or evalplus's release schema."""
    task_id = record["task_id"]
    task_id = f"Mbpp/{task_id}" if isinstance(task_id, int) or str(task_id).isdigit() else str(task_id)
    description = str(record.get("prompt", "")).strip().strip("'\"").strip()
    assertion = record.get("assertion") or record.get("test") or "\n".join(record.get("test_list") or [])
    first_test = next((line for line in assertion.splitlines() if line.strip().startswith("assert")), "")
    entry_point = record.get("entry_point") or _entry_point_from(first_test)
    return {
        "prompt": f'"""\n{description}\n{first_test}\n"""\n',
        "description": description,
        "entry_point": entry_point,
        "assertion": assertion,
        "test_imports": list(record.get("test_imports") or []),
        "canonical_solution": record.get("canonical_solution") or record.get("code", ""),
        "base_input": record.get("base_input"),
        "plus_input": record.get("plus_input"),
        "atol": float(record.get("atol") or 0),
        "task_id": task_id,
    }


def _entry_point_from(assertion: str) -> str:
    import re

    match = re.search(r"assert\s+(?:\w+\.\w+\()?\s*(?:set\()?\s*(\w+)\(", assertion)
    return match.group(1) if match else ""


def load_task(
    task: str, *, data: str | None = None, max_items: int | None = DEFAULT_MAX_ITEMS, limit: int | None = None
) -> list[TaskItem]:
    """The evaluated items of ``task``, in evaluation order."""
    if task not in SOURCES:
        raise ValueError(f"unknown task {task!r} (known: {', '.join(SOURCES)})")
    source = SOURCES[task]
    location = data or (os.environ.get(source.override_env) if source.override_env else None) or source.hub_id
    records = load_records(location, hub_config=source.hub_config, split=source.split)
    if not records:
        raise ValueError(f"{location}: no items for task {task}")
    indices = sample_indices(len(records), max_items, source.sample_seed)
    if limit is not None:
        indices = indices[:limit]
    items = []
    for index in indices:
        record = records[index]
        try:
            items.append(_make_item(task, index, record))
        except KeyError as error:
            raise ValueError(
                f"{location}: item {index} has no field {error.args[0]!r} needed by task {task}"
            ) from None
    return items


def _make_item(task: str, index: int, record: dict[str, Any]) -> TaskItem:
    kind = task_kind(task)
    if kind == "math":
        return TaskItem(f"{task}/{index}", task, {"question": record["question"], "answer": record["answer"]})
    if kind == "summary":
        return TaskItem(
            f"{task}/{index}", task, {"document": record["document"], "summary": record["summary"]}
        )
    if kind == "humaneval":
        fields = {key: record[key] for key in ("prompt", "test", "entry_point")}
        fields["canonical_solution"] = record.get("canonical_solution", "")
        return TaskItem(str(record["task_id"]), task, fields)
    fields = _mbpp_fields(record)
    return TaskItem(fields["task_id"], task, fields)
