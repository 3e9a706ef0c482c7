"""The graph of a model's runs: stages with their typed arguments, the result paths they read and write, and
the edges those paths make (a stage depends on every earlier stage that writes a path it reads).

Every executor reads this one graph: printing it (``PLAN=1``), running it locally in lanes
(:mod:`orchestration.local`), submitting it to SLURM (:mod:`orchestration.slurm_jobs`) and estimating its
A100-hours (:mod:`orchestration.gpu_hours`). A stage's command is serialised once, from its arguments.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError
from infra.paths import REPO_ROOT


class PlanError(ConfigError):
    """A plan that cannot be made (a missing input, a bad variable); the message names it."""


def shell_word(arg: str) -> str:
    return arg if re.fullmatch(r"[A-Za-z0-9_./:=,@+%-]+", arg) else shlex.quote(arg)


def flag_text(value: Any) -> str:
    """A flag's value as the stage's command line takes it (lists comma-separated, whole floats bare)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(flag_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class Search:
    """An iterative search's shape, for the executors: its steps and each step's candidate count."""

    num_layers: int
    steps: int
    protected: tuple[int, ...] = (0,)

    def candidates(self, step: int) -> int:
        return self.num_layers - len(self.protected) - (step - 1)


@dataclass
class Stage:
    """One stage: ``[*launcher, "-m", module, *flags]``. ``args``: the flags in order, each ``(flag, value)``
    (``None``: the flag alone; a flag may repeat). ``outputs``/``inputs``: the result paths it writes and
    reads. ``layers``: a sweep's layers (one SLURM array task each); ``search``: an iterative search (one
    array per step, candidates in blocks). ``processes``: how many processes (GPUs) its launcher starts.
    ``cost``: the facts the A100-hour estimate reads (:mod:`orchestration.gpu_hours`)."""

    module: str
    args: list[tuple[str, Any]]
    outputs: list[str]
    inputs: list[str] = field(default_factory=list)
    launcher: list[str] = field(default_factory=lambda: ["python"])
    layers: list[int] = field(default_factory=list)
    search: Search | None = None
    processes: int = 1
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.outputs[0]

    def flags(self, drop: tuple[str, ...] = ()) -> list[str]:
        words: list[str] = []
        for name, value in self.args:
            if name in drop:
                continue
            words.append(name)
            if value is not None:
                words.append(flag_text(value))
        return words

    @property
    def command(self) -> list[str]:
        return [*self.launcher, "-m", self.module, *self.flags()]

    def command_without(self, *names: str) -> list[str]:
        """The command without some flags (a SLURM array task sets them itself)."""
        return [*self.launcher, "-m", self.module, *self.flags(drop=names)]

    def get(self, name: str, default: Any = None) -> Any:
        values = [value for flag, value in self.args if flag == name]
        return values[-1] if values else default

    def set(self, name: str, value: Any) -> None:
        self.args = [(flag, value if flag == name else old) for flag, old in self.args]

    def line(self) -> str:
        return " ".join(shell_word(arg) for arg in self.command)


def path_parts(value: str) -> tuple[str, ...]:
    return Path(os.path.normpath(REPO_ROOT / value)).parts


def overlaps(a: str, b: str) -> bool:
    """Whether one path is the other or inside it."""
    pa, pb = path_parts(a), path_parts(b)
    shorter = min(len(pa), len(pb))
    return pa[:shorter] == pb[:shorter]


class Graph:
    """The stages of a study in the order they were planned, each output planned once; ``lines`` is what
    ``PLAN=1`` prints (stage commands and ``[skip] <output>`` for complete ones)."""

    def __init__(self) -> None:
        self.stages: list[Stage] = []
        self.lines: list[str | Stage] = []
        self._by_output: dict[str, Stage] = {}
        self._skipped: set[str] = set()

    def planned(self, output: str) -> Stage | None:
        return self._by_output.get(output)

    def pending(self, output: str, done: bool) -> bool:
        """Whether a stage still has to write ``output``: a complete one is reported once, a planned one is
        not planned twice."""
        if done:
            if output not in self._skipped:
                self._skipped.add(output)
                self.lines.append(f"[skip] {output}")
            return False
        return output not in self._by_output

    def add(self, stage: Stage) -> Stage:
        for output in stage.outputs:
            if output in self._by_output:
                raise PlanError(f"{output}: planned twice ({self._by_output[output].module}, {stage.module})")
        self.stages.append(stage)
        self.lines.append(stage)
        for output in stage.outputs:
            self._by_output[output] = stage
        return stage

    def text(self) -> list[str]:
        return [line if isinstance(line, str) else line.line() for line in self.lines]

    def dependencies(self, stage: Stage) -> list[Stage]:
        """The earlier stages that write a path ``stage`` reads."""
        index = self.stages.index(stage)
        return [
            other
            for other in self.stages[:index]
            if any(overlaps(out, path) for out in other.outputs for path in stage.inputs)
        ]

    def ancestors(self, stage: Stage) -> list[Stage]:
        """``stage``'s dependencies, theirs, and so on, in plan order."""
        found: set[int] = set()
        todo = [stage]
        while todo:
            for dependency in self.dependencies(todo.pop()):
                if id(dependency) not in found:
                    found.add(id(dependency))
                    todo.append(dependency)
        return [s for s in self.stages if id(s) in found]

    def outputs(self) -> list[str]:
        return [out for stage in self.stages for out in stage.outputs]
