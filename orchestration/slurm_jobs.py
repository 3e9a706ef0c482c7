"""The SLURM jobs of an experiment script's stage commands (its ``PLAN=1`` output): one job per command, arrays
for the single-layer sweep (one task per missing layer) and for each iterative-search step (one task per
missing candidate), and ``afterok`` dependencies on the jobs that write what a job reads. Used by
:mod:`infra.slurm`, which submits them."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from infra.config import ConfigError
from infra.paths import REPO_ROOT

OUTPUT_FLAGS = ("--output_dir", "--output")


@dataclass
class Job:
    """One sbatch submission: a stage command, or an array of one (``array`` task ids)."""

    name: str
    stage: str
    command: list[str]
    array: list[int] | None = None
    array_flag: str | None = None  # the command's flag that takes $SLURM_ARRAY_TASK_ID
    array_label: str = "task"
    after: list[int] = field(default_factory=list)  # indices of earlier jobs in the submission
    outputs: list[str] = field(default_factory=list)

    def wrap(self) -> str:
        """The job's shell command (sbatch --wrap runs it with /bin/sh)."""
        line = shlex.join(self.command)
        if self.array_flag:
            line += f' {self.array_flag} "$SLURM_ARRAY_TASK_ID"'
        return line


def plan_commands(script: str, model_config: str, env: dict[str, str] | None = None) -> list[list[str]]:
    """The stage commands ``script`` still has to run (its PLAN=1 output), in order."""
    result = subprocess.run(
        ["bash", script, model_config],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {}), "PLAN": "1"},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ConfigError(f"{script}: planning failed (exit {result.returncode}): {result.stderr.strip()}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return [shlex.split(line) for line in lines if not line.startswith("[")]


def flag_values(command: list[str]) -> dict[str, list[str]]:
    """``--flag value...`` pairs of a command (a flag's values run up to the next flag)."""
    values: dict[str, list[str]] = {}
    current = None
    for arg in command:
        if arg.startswith("--"):
            current = arg.split("=", 1)[0]
            values.setdefault(current, [])
            if "=" in arg:
                values[current].append(arg.split("=", 1)[1])
        elif current is not None:
            values[current].append(arg)
    return values


def stage_of(command: list[str]) -> str:
    """The module a command runs (``python -m <module>``, also behind a launcher), else its program."""
    if "-m" in command:
        return command[command.index("-m") + 1]
    return Path(command[0]).name


def _without_flag(command: list[str], flag: str) -> list[str]:
    out, skipping = [], False
    for arg in command:
        if arg.startswith("--"):
            skipping = arg == flag or arg.startswith(flag + "=")
        if not skipping:
            out.append(arg)
    return out


def _path(value: str) -> tuple[str, ...]:
    value = value.split("=", 1)[1] if "=" in value and not value.startswith(("/", ".")) else value
    return Path(os.path.normpath(REPO_ROOT / value)).parts


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _label(path: str, results: Path) -> str:
    """A job's name from the path it writes, relative to the results: pruned/bi-25pct/model -> pruned.bi-25pct"""
    try:
        relative = Path(os.path.normpath(REPO_ROOT / path)).relative_to(os.path.normpath(REPO_ROOT / results))
    except ValueError:
        relative = Path(path)
    return ".".join(p for p in relative.parts if p != "model") or relative.name


def array_spec(ids: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3,7'"""
    ranges: list[str] = []
    start = previous = ids[0]
    for i in [*ids[1:], None]:
        if i is not None and i == previous + 1:
            previous = i
            continue
        ranges.append(str(start) if start == previous else f"{start}-{previous}")
        if i is not None:
            start = previous = i
    return ",".join(ranges)


def sweep_jobs(command: list[str], name: str) -> list[Job]:
    """A sweep over --layers: one array task per layer not yet scored, then the collecting run."""
    values = flag_values(command)
    output_dir = REPO_ROOT / values["--output_dir"][0]
    layers = [int(x) for x in ",".join(values.get("--layers", [])).split(",") if x]
    missing = [layer for layer in layers if not (output_dir / f"layer_{layer:03d}.json").is_file()]
    jobs = []
    if missing:
        jobs.append(
            Job(
                name=f"{name}.layers",
                stage="layer_pruner.sweep",
                command=_without_flag(command, "--layers"),
                array=missing,
                array_flag="--layer",
                array_label="layer",
            )
        )
    collect = Job(name=name, stage="layer_pruner.sweep", command=command, outputs=values["--output_dir"])
    collect.after = [0] if missing else []  # relative to this group; shifted by the caller
    return [*jobs, collect]


def iterative_jobs(command: list[str], name: str) -> list[Job]:
    """An iterative search: baseline, one array per step (one task per missing candidate), final run."""
    from infra.model_spec import load_model_spec
    from layer_pruner.iterative import PROTECTED_LAYERS, search_dir_for, search_progress
    from layer_pruner.plan import layers_to_remove

    values = flag_values(command)
    (model_config,) = values["--model_config"]
    num_layers = load_model_spec(model_config).num_layers
    ratio = values.get("--ratio")
    n = layers_to_remove(
        num_layers,
        n=int(values["--n"][0]) if "--n" in values else None,
        ratio=float(ratio[0]) if ratio else None,
    )
    output_dir = values["--output_dir"][0]
    search_dir = REPO_ROOT / (
        values["--search_dir"][0] if "--search_dir" in values else search_dir_for(output_dir)
    )
    progress = search_progress(search_dir, num_layers, n)
    jobs: list[Job] = []
    if not (search_dir / "baseline.json").is_file():
        jobs.append(
            Job(name=f"{name}.baseline", stage="layer_pruner.prune", command=[*command, "--baseline_only"])
        )
    if progress is not None:
        first_step, missing = progress
        for step in range(first_step, n + 1):
            tasks = (
                missing
                if step == first_step
                else list(range(num_layers - len(PROTECTED_LAYERS) - (step - 1)))
            )
            if not tasks:
                continue
            job = Job(
                name=f"{name}.step{step}",
                stage="layer_pruner.prune",
                command=command,
                array=tasks,
                array_flag="--candidate_index",
                array_label=f"step {step} candidate",
            )
            job.after = [len(jobs) - 1] if jobs else []
            jobs.append(job)
    final = Job(name=name, stage="layer_pruner.prune", command=command, outputs=[output_dir])
    final.after = [len(jobs) - 1] if jobs else []
    return [*jobs, final]


def build_jobs(commands: list[list[str]], model_config: str, results: Path) -> list[Job]:
    """The jobs of a script's stage commands, with their dependencies (indices of earlier jobs)."""
    jobs: list[Job] = []
    for command in commands:
        stage = stage_of(command)
        values = flag_values(command)
        outputs = [v for flag in OUTPUT_FLAGS for v in values.get(flag, [])]
        name = f"{model_config}.{_label(outputs[0], results) if outputs else stage.rsplit('.', 1)[-1]}"
        if stage == "layer_pruner.sweep" and "--layers" in values:
            group = sweep_jobs(command, name)
        elif stage == "layer_pruner.prune" and values.get("--method") == ["iterative"]:
            group = iterative_jobs(command, name)
        else:
            group = [Job(name=name, stage=stage, command=command, outputs=outputs)]
        # Every flag value read as a path (the repository is the base of relative ones); numbers and names
        # match no output.
        inputs = [
            _path(v) for flag, vs in values.items() if flag not in OUTPUT_FLAGS for v in vs if v.strip(".")
        ]
        writers = [
            i
            for i, job in enumerate(jobs)
            for out in job.outputs
            if any(_overlaps(_path(out), p) for p in inputs)
        ]
        offset = len(jobs)
        for job in group:
            job.after = sorted({*writers, *(offset + i for i in job.after)})
        jobs.extend(group)
    return jobs
