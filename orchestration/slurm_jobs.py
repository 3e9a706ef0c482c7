"""The SLURM jobs of an experiment script's stages (:mod:`orchestration.plan`, the list ``PLAN=1`` prints):
one job per stage, arrays for the single-layer sweep (one task per missing layer) and for each
iterative-search step (one task per missing candidate), and ``afterok`` dependencies on the jobs that write
what a stage reads (its declared inputs). Used by :mod:`orchestration.slurm`, which submits them."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from infra.config import ConfigError
from infra.paths import REPO_ROOT
from orchestration.plan import PLANS, Stage, plan_stages


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


def script_stages(script: str, model_config: str, env: dict[str, str] | None = None) -> list[Stage]:
    """The stages ``script`` (``scripts/<plan>.sh``) still has to run, in order: its plan, built in
    process (the script execs ``python -m orchestration.plan <plan>``)."""
    name = Path(script).stem
    if name not in PLANS:
        raise ConfigError(f"{script}: not an experiment script (plans: {', '.join(PLANS)})")
    return plan_stages(name, model_config, {**os.environ, **(env or {})}).stages


def _path(value: str) -> tuple[str, ...]:
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


def sweep_jobs(stage: Stage, name: str) -> list[Job]:
    """A sweep over its layers: one array task per layer not yet scored, then the collecting run."""
    output_dir = REPO_ROOT / stage.outputs[0]
    missing = [layer for layer in stage.layers if not (output_dir / f"layer_{layer:03d}.json").is_file()]
    jobs = []
    if missing:
        assert stage.array_command is not None
        jobs.append(
            Job(
                name=f"{name}.layers",
                stage=stage.module,
                command=stage.array_command,
                array=missing,
                array_flag="--layer",
                array_label="layer",
            )
        )
    collect = Job(name=name, stage=stage.module, command=stage.command, outputs=stage.outputs)
    collect.after = [0] if missing else []  # relative to this group; shifted by the caller
    return [*jobs, collect]


def iterative_jobs(stage: Stage, name: str) -> list[Job]:
    """An iterative search: baseline, one array per step (one task per missing candidate), final run."""
    from infra.model_spec import load_model_spec
    from layer_pruner.iterative import PROTECTED_LAYERS, search_dir_for, search_progress
    from layer_pruner.plan import layers_to_remove

    assert stage.search is not None
    num_layers = load_model_spec(stage.search["model_config"]).num_layers
    n = layers_to_remove(num_layers, n=stage.search["n"], ratio=stage.search["ratio"])
    output_dir = stage.outputs[0]
    search_dir = REPO_ROOT / search_dir_for(output_dir)
    progress = search_progress(search_dir, num_layers, n)
    command = stage.command
    jobs: list[Job] = []
    if not (search_dir / "baseline.json").is_file():
        jobs.append(Job(name=f"{name}.baseline", stage=stage.module, command=[*command, "--baseline_only"]))
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
                stage=stage.module,
                command=command,
                array=tasks,
                array_flag="--candidate_index",
                array_label=f"step {step} candidate",
            )
            job.after = [len(jobs) - 1] if jobs else []
            jobs.append(job)
    final = Job(name=name, stage=stage.module, command=command, outputs=[output_dir])
    final.after = [len(jobs) - 1] if jobs else []
    return [*jobs, final]


def build_jobs(stages: list[Stage], model_config: str, results: Path) -> list[Job]:
    """The jobs of a plan's stages, with their dependencies (indices of earlier jobs): a job waits for every
    earlier job that writes a path the stage declares as an input."""
    jobs: list[Job] = []
    for stage in stages:
        name = f"{model_config}.{_label(stage.outputs[0], results)}"
        if stage.module == "layer_pruner.sweep" and stage.layers:
            group = sweep_jobs(stage, name)
        elif stage.search is not None:
            group = iterative_jobs(stage, name)
        else:
            group = [Job(name=name, stage=stage.module, command=stage.command, outputs=stage.outputs)]
        inputs = [_path(path) for path in stage.inputs]
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
