"""The SLURM jobs of a plan's graph (:mod:`orchestration.plan`): one job per stage, arrays for the single-layer
sweep (one task per missing layer) and for each iterative-search step (one task per block of candidates that
share one engine), and ``afterok`` dependencies on the jobs that write what a stage reads. A stage whose job is
already queued or running (same name and output, ``squeue``) is not submitted again: its dependents wait for
that job. Used by :mod:`orchestration.slurm`, which submits them."""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from infra.layout import BASELINE, unscored_layers
from infra.paths import REPO_ROOT
from orchestration.graph import Graph, Stage, overlaps


@dataclass
class Job:
    """One sbatch submission: a stage's command, or an array of one (``array`` task ids). ``after``: the
    jobs it waits for, as indices of earlier jobs of this submission (int) or ids of jobs already queued
    (str)."""

    name: str
    stage: Stage
    command: list[str]
    array: list[int] | None = None
    array_args: list[str] = field(default_factory=list)  # appended per task ($SLURM_ARRAY_TASK_ID in them)
    array_label: str = "task"
    after: list[int | str] = field(default_factory=list)
    final: bool = True  # the job that completes its stage (its output); dependents wait for it
    hours: float | None = None  # wall-clock limit asked for (None: the resources file's)

    @property
    def module(self) -> str:
        return self.stage.module

    @property
    def output(self) -> str:
        return self.stage.output

    def wrap(self) -> str:
        """The job's shell command (sbatch --wrap runs it with /bin/sh)."""
        line = shlex.join(self.command)
        if self.array_args:
            line += " " + " ".join(self.array_args)
        return line

    def log(self, log_dir: Path) -> Path:
        """The log file's pattern (sbatch --output): ``%j`` the job id, ``%A_%a`` array and task."""
        return log_dir / (f"{self.name}-%A_%a.out" if self.array else f"{self.name}-%j.out")

    def log_of(self, log_dir: Path, job_id: str) -> Path:
        return Path(str(self.log(log_dir)).replace("%j", job_id).replace("%A", job_id))

    def comment(self) -> str:
        """What a job is (its stage's output, absolute): with its name, how a later submission recognises it
        in the queue."""
        return os.path.normpath(REPO_ROOT / self.output)


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


def _label(path: str, results: Path) -> str:
    """A job's name from the path it writes, relative to the results: pruned/bi-25pct/model -> pruned.bi-25pct"""
    try:
        relative = Path(os.path.normpath(REPO_ROOT / path)).relative_to(os.path.normpath(REPO_ROOT / results))
    except ValueError:
        relative = Path(path)
    return ".".join(p for p in relative.parts if p != "model") or relative.name


def sweep_jobs(stage: Stage, name: str) -> list[Job]:
    """A sweep over its layers: one array task per layer not yet scored, then the collecting run."""
    output_dir = REPO_ROOT / stage.output
    missing = unscored_layers(output_dir, stage.layers)
    jobs = []
    if missing:
        jobs.append(
            Job(
                name=f"{name}.layers",
                stage=stage,
                command=stage.command_without("--layers"),
                array=missing,
                array_args=["--layer", '"$SLURM_ARRAY_TASK_ID"'],
                array_label="layer",
                final=False,
            )
        )
    collect = Job(name=name, stage=stage, command=stage.command, after=[0] if missing else [])
    return [*jobs, collect]


def search_jobs(stage: Stage, name: str, block_size: int | None) -> list[Job]:
    """An iterative search: baseline, one array per step (one task per block of ``block_size`` candidates
    still missing, sharing one engine; default: a step's candidates over 8 tasks), final run."""
    from layer_pruner.iterative import search_dir_for, search_progress

    assert stage.search is not None
    search = stage.search
    search_dir = REPO_ROOT / (stage.get("--search_dir") or search_dir_for(stage.output))
    progress = search_progress(search_dir, search.num_layers, search.steps, search.protected)
    jobs: list[Job] = []
    if not (search_dir / f"{BASELINE}.json").is_file():
        jobs.append(Job(f"{name}.baseline", stage, [*stage.command, "--baseline_only"], final=False))
    if progress is not None:
        first_step, missing = progress
        for step in range(first_step, search.steps + 1):
            count = search.candidates(step)
            size = block_size or max(1, math.ceil(count / 8))
            if step == first_step:
                blocks = sorted({index // size for index in missing})
            else:
                blocks = list(range(math.ceil(count / size)))
            if not blocks:
                continue
            job = Job(
                name=f"{name}.step{step}",
                stage=stage,
                command=stage.command,
                array=blocks,
                array_args=["--block_size", str(size), "--candidate_block", '"$SLURM_ARRAY_TASK_ID"'],
                array_label=f"step {step} block",
                final=False,
            )
            job.after = [len(jobs) - 1] if jobs else []
            jobs.append(job)
    final = Job(name, stage, stage.command, after=[len(jobs) - 1] if jobs else [])
    return [*jobs, final]


def _order(job: int | str) -> tuple:
    """Jobs of this submission by index, then queued ones by id."""
    return (0, job, "") if isinstance(job, int) else (1, 0, job)


def build_jobs(
    graph: Graph,
    model_config: str,
    results: Path,
    queued: dict[tuple[str, str], str] | None = None,
    block_size: int | None = None,
) -> list[Job]:
    """The jobs of a graph's stages, with their dependencies: a job waits for every job that writes a path
    its stage reads, submitted now or already queued. ``queued``: ``(name, comment) -> job id`` of the jobs
    in the queue; a stage found there is left out, and its dependents wait for the queued job."""
    queued = queued or {}
    jobs: list[Job] = []
    writers: list[tuple[Stage, int | str]] = []  # each stage and the job that completes it
    for stage in graph.stages:
        name = f"{model_config}.{_label(stage.output, results)}"
        waits = {
            job
            for other, job in writers
            if any(overlaps(out, path) for out in other.outputs for path in stage.inputs)
        }
        existing = queued.get((name, os.path.normpath(REPO_ROOT / stage.output)))
        if existing is not None:
            writers.append((stage, existing))
            continue
        if stage.module == "layer_pruner.sweep" and stage.layers:
            group = sweep_jobs(stage, name)
        elif stage.search is not None:
            group = search_jobs(stage, name, block_size)
        else:
            group = [Job(name=name, stage=stage, command=stage.command)]
        offset = len(jobs)
        for job in group:
            job.after = sorted({*waits, *(offset + i for i in job.after if isinstance(i, int))}, key=_order)
        jobs.extend(group)
        writers.append((stage, len(jobs) - 1))
    return jobs
