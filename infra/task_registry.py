"""The task registry: one place for what each generative task is (``configs/tasks/*.yaml``).

Per task: its kind (how items are read and scored: math, humaneval, mbpp, summary), its source (hub id or
local file), and per use (``eval``: the evaluation tables; ``search``: the iterative search and the sweep)
the split and the sampling seed; globally, the item counts and context lengths per use, the stop strings and
the code time limit the original code ran with. Evaluation, retention, the search, the sweep, the prompts and
the figures read it; toy tasks (``configs/tasks/toy.yaml``) are registered but never a default.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from infra.config import ConfigError, load_yaml
from infra.paths import REPO_ROOT

TASK_CONFIG_DIR = REPO_ROOT / "configs" / "tasks"
KINDS = ("math", "humaneval", "mbpp", "summary")
CODE_KINDS = ("humaneval", "mbpp")
USES = ("eval", "search")


@dataclass(frozen=True)
class Selection:
    split: str
    seed: int | None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str
    source: str
    selections: dict[str, Selection]
    hub_config: str | None = None
    override_env: str | None = None
    toy: bool = False
    label: str = ""  # how tables and figures name it

    def selection(self, use: str) -> Selection:
        if use not in self.selections:
            raise ConfigError(f"task {self.name!r} has no {use!r} selection")
        return self.selections[use]


@dataclass(frozen=True)
class TaskRegistry:
    tasks: dict[str, TaskSpec]
    stop_strings: tuple[str, ...]
    items: dict[str, int]
    context: dict[str, int]
    code_timeout_s: float
    search_tasks: tuple[str, ...]
    eval_tasks: tuple[str, ...]

    def spec(self, task: str) -> TaskSpec:
        if task not in self.tasks:
            known = ", ".join(name for name, spec in self.tasks.items() if not spec.toy)
            raise ConfigError(
                f"unknown task {task!r} (known: {known}; toy tasks: {', '.join(self.toy_tasks)})"
            )
        return self.tasks[task]

    def label(self, task: str) -> str:
        return self.tasks[task].label if task in self.tasks else task

    def of_kind(self, *kinds: str) -> tuple[str, ...]:
        return tuple(name for name, spec in self.tasks.items() if spec.kind in kinds)

    @property
    def toy_tasks(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.tasks.items() if spec.toy)


def _read_tasks(path: Any, toy: bool) -> dict[str, TaskSpec]:
    data = load_yaml(path)
    tasks = {}
    for name, entry in (data.get("tasks") or {}).items():
        where = f"{path}: tasks.{name}"
        if entry.get("kind") not in KINDS:
            raise ConfigError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {entry.get('kind')!r}")
        selections = {}
        for use in USES:
            chosen = entry.get(use)
            if not isinstance(chosen, dict) or "split" not in chosen:
                raise ConfigError(f"{where}.{use}: needs a split (and a seed)")
            selections[use] = Selection(str(chosen["split"]), chosen.get("seed"))
        source = str(entry["source"]) if "source" in entry else None
        if source is None:
            raise ConfigError(f"{where}.source: missing")
        tasks[name] = TaskSpec(
            name,
            entry["kind"],
            source,
            selections,
            entry.get("hub_config"),
            entry.get("override_env"),
            toy,
            str(entry.get("label", name)),
        )
    return tasks


@functools.lru_cache(maxsize=1)
def registry() -> TaskRegistry:
    """The task registry (``configs/tasks/generative.yaml`` plus the toy tasks)."""
    path = TASK_CONFIG_DIR / "generative.yaml"
    data = load_yaml(path)
    defaults = data.get("defaults") or {}
    tasks = {**_read_tasks(path, toy=False), **_read_tasks(TASK_CONFIG_DIR / "toy.yaml", toy=True)}
    for key in ("search_tasks", "eval_tasks"):
        unknown = [t for t in data.get(key, []) if t not in tasks]
        if unknown:
            raise ConfigError(f"{path}: {key} names unknown task {unknown[0]!r}")
    return TaskRegistry(
        tasks=tasks,
        stop_strings=tuple(defaults.get("stop_strings", ())),
        items={use: int(defaults[use]["items"]) for use in USES},
        context={use: int(defaults[use]["context"]) for use in USES},
        code_timeout_s=float(defaults.get("code_timeout_s", 30)),
        search_tasks=tuple(data["search_tasks"]),
        eval_tasks=tuple(data["eval_tasks"]),
    )


def task_kind(task: str) -> str:
    return registry().spec(task).kind


def is_code_task(task: str) -> bool:
    return task in registry().tasks and registry().tasks[task].kind in CODE_KINDS


def task_context(spec: Any, use: str, *, model: str | None = None, requested: int | None = None) -> int:
    """Prompt + generation for ``use`` (eval or search): the smallest of the task registry's context, the
    model config's ``max_context``, the model's own ``max_position_embeddings`` and what the user asked for.
    A prompt that leaves no room is answered empty, with finish reason ``length``."""
    from infra.modeling import model_context_limit

    limits = [registry().context[use], spec.max_context, requested]
    if model is not None:
        limits.append(model_context_limit(model))
    return min(limit for limit in limits if limit is not None)
