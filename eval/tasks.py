"""Task data: the one registry of generative tasks, and their items as the original code chose them.

What a task is comes from the registry (:mod:`infra.task_registry`, ``configs/tasks/*.yaml``).

Items: a split larger than the use's item count is sampled as the original code did,
``Dataset.train_test_split(train_size=k, shuffle=True, seed=S)["train"]`` (computed here with the same NumPy
permutation, without building a dataset); smaller splits are used whole, in order. Item ids are the
dataset's ``task_id`` where it has one (MBPP+: ``Mbpp/<id>``), else ``<task>/<index in the split>``.
Sources are hub datasets or local files in the hub schema (for HumanEval+ and MBPP+ also evalplus's
release schema); ``HUMANEVAL_OVERRIDE_PATH`` / ``MBPP_OVERRIDE_PATH`` (evalplus's variables) are honoured.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infra.datasets import load_records
from infra.paths import cache_dir
from infra.task_registry import CODE_KINDS, is_code_task, registry, task_kind

__all__ = ["CODE_KINDS", "TaskItem", "is_code_task", "load_task", "registry", "sample_indices", "task_kind"]


@dataclass
class TaskItem:
    id: str
    task: str
    fields: dict[str, Any] = field(default_factory=dict)  # what the prompt template may use, and the gold


def sample_indices(n: int, max_items: int | None, seed: int | None) -> list[int]:
    """Indices of the evaluated items, as ``train_test_split(train_size=max_items, shuffle=True,
    seed=seed)["train"]`` selects them; all, in order, when the split is not larger than ``max_items``."""
    if max_items is None or max_items >= n:
        return list(range(n))
    if seed is None:
        return list(range(max_items))
    permutation = np.random.default_rng(seed).permutation(n)
    n_test = n - max_items
    return permutation[n_test : n_test + max_items].tolist()


def _entry_point_from(assertion: str) -> str:
    match = re.search(r"assert\s+(?:\w+\.\w+\()?\s*(?:set\()?\s*(?:not\s+)?\(?\s*(\w+)\(", assertion)
    return match.group(1) if match else ""


def _mbpp_fields(record: dict[str, Any]) -> dict[str, Any]:
    """One MBPP+ item from the hub schema (``test_list``, ``test_imports``, ``code``) or evalplus's release
    schema (``assertion``, ``canonical_solution``, docstring ``prompt``)."""
    task_id = record["task_id"]
    task_id = f"Mbpp/{task_id}" if isinstance(task_id, int) or str(task_id).isdigit() else str(task_id)
    if "test_list" in record:  # the hub: prompt is the plain description
        description = str(record["prompt"])
        test_list = [str(line) for line in record["test_list"]]
        solution = record.get("code", "")
    else:  # evalplus release: prompt is '"""\n<description>\n<first assertion>\n"""\n'
        lines = str(record["prompt"]).strip().strip("'\"").strip().splitlines()
        description = "\n".join(line for line in lines if not line.strip().startswith("assert")).strip()
        test_list = [line for line in str(record["assertion"]).splitlines() if line.strip()]
        solution = record.get("canonical_solution", "")
    entry_point = record.get("entry_point") or _entry_point_from(test_list[0] if test_list else "")
    return {
        "prompt": description,
        "test_assertion": test_list[0] if test_list else "",
        "test_list": test_list,
        "test_imports": list(record.get("test_imports") or []),
        "test": record.get("test") if "test_list" in record else None,  # the hub's plus program
        "entry_point": entry_point,
        "canonical_solution": solution,
        "base_input": record.get("base_input"),
        "plus_input": record.get("plus_input"),
        "atol": float(record.get("atol") or 0),
        "task_id": task_id,
    }


def load_task(
    task: str,
    *,
    data: str | None = None,
    use: str = "eval",
    max_items: int | None = None,
    limit: int | None = None,
) -> list[TaskItem]:
    """The items of ``task`` for ``use`` (eval or search), in the order the original code ran them.

    ``max_items`` defaults to the registry's count for the use (1,000 eval, 100 search); ``limit`` then
    keeps the first ``limit`` of those (for quick runs)."""
    spec = registry().spec(task)
    selection = spec.selection(use)
    source = spec.source
    if spec.toy:
        source = str(cache_dir() / source)
    location = data or (os.environ.get(spec.override_env) if spec.override_env else None) or source
    records = load_records(location, hub_config=spec.hub_config, split=selection.split)
    if not records:
        raise ValueError(f"{location}: no items for task {task}")
    count = registry().items[use] if max_items is None else max_items
    indices = sample_indices(len(records), count, selection.seed)
    if limit is not None:
        indices = indices[:limit]
    items = []
    for index in indices:
        try:
            items.append(_make_item(task, spec.kind, index, records[index]))
        except (KeyError, IndexError) as error:
            raise ValueError(
                f"{location}: item {index} has no field {error.args[0]!r} needed by task {task}"
            ) from None
    return items


def _make_item(task: str, kind: str, index: int, record: dict[str, Any]) -> TaskItem:
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
