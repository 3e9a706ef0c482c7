"""The local executor: a plan's graph run on this machine, ``jobs`` stages side by side (lanes).

    python -m orchestration.plan table2_recovery llama-3.1-8b-instruct            # one lane
    STUDY=toy python -m orchestration.plan paper toy-llama --jobs 2               # the toy study's two lanes

A stage starts once every stage that writes a path it reads has finished; among the stages ready to start,
the one whose chain of descendants holds the most estimated work goes first (each stage weighed by its
A100-hour estimate, :mod:`orchestration.gpu_hours`), so the long poles (the search, the sweep, the probe) start
early. With several lanes each stage gets ``threads`` threads (default: the cores divided by the
lanes). The first failure stops new starts; the stages already running finish, and the exit status is the
failed stage's. Each finished stage prints ``[plan] <module> -> <output>: N s`` for batch logs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from infra.paths import REPO_ROOT

if TYPE_CHECKING:
    from orchestration.graph import Stage
    from orchestration.plan import Plan
    from orchestration.study import Study


def build_model(study: Study) -> int:
    """Build the study's own model (and its data) when the study has one; cached, so quick when built."""
    command = study.build_command()
    if not command:
        return 0
    started = time.monotonic()
    status = subprocess.run(command, cwd=REPO_ROOT).returncode
    if status != 0:
        print(
            f"error: building the study's model failed (exit {status}): {' '.join(command)}", file=sys.stderr
        )
        return status
    print(f"[plan] model ready -> {study.model_path}: {time.monotonic() - started:.0f} s", flush=True)
    return 0


def priorities(plan: Plan) -> dict[int, float]:
    """Per stage (by id), the estimated work on its longest chain of descendants, itself included (each
    stage's A100-hour estimate as its weight, :mod:`orchestration.gpu_hours`): a list schedule that starts the
    longest chains first finishes soonest."""
    from orchestration.gpu_hours import DEFAULT_THROUGHPUT, CostModel, load_throughput

    # The study's rates (the CPU studies': configs/experiments/cpu_throughput.yaml), else the A100's.
    model = CostModel(plan, load_throughput(REPO_ROOT / (plan.study.throughput or DEFAULT_THROUGHPUT)))
    stages = plan.graph.stages
    children: dict[int, list[Stage]] = {id(s): [] for s in stages}
    for stage in stages:
        for dependency in plan.graph.dependencies(stage):
            children[id(dependency)].append(stage)
    depth: dict[int, float] = {}
    for stage in reversed(stages):  # children come later in plan order
        own = model.hours(stage) + 1e-6
        depth[id(stage)] = own + max((depth[id(c)] for c in children[id(stage)]), default=0.0)
    return depth


def run_graph(plan: Plan, study: Study) -> int:
    """Run every stage of ``plan`` that is not complete, ``study.jobs`` at a time."""
    status = build_model(study)
    if status != 0:
        return status
    (REPO_ROOT / plan.results).mkdir(parents=True, exist_ok=True)
    for line in plan.lines:
        if line.startswith("[skip] "):
            print(line, flush=True)
    stages = list(plan.graph.stages)
    lanes = max(1, study.jobs)
    env = dict(os.environ)
    if lanes > 1:
        threads = study.threads or max(1, (os.cpu_count() or 1) // lanes)
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    elif study.threads:
        env.update(OMP_NUM_THREADS=str(study.threads), MKL_NUM_THREADS=str(study.threads))
    dependencies = {id(s): {id(d) for d in plan.graph.dependencies(s)} for s in stages}
    rank = priorities(plan)
    order = {id(s): i for i, s in enumerate(stages)}
    finished: set[int] = set()
    running: dict[int, tuple[Stage, subprocess.Popen, float]] = {}
    waiting = list(stages)
    failure = 0
    while waiting or running:
        if not failure:
            ready = [s for s in waiting if dependencies[id(s)] <= finished]
            # One lane: plan order. Several: the longest chain of descendants first.
            ready.sort(key=lambda s: (-rank[id(s)] if lanes > 1 else 0, order[id(s)]))
            for stage in ready[: lanes - len(running)]:
                waiting.remove(stage)
                process = subprocess.Popen(stage.command, cwd=REPO_ROOT, env=env)
                running[id(stage)] = (stage, process, time.monotonic())
        if not running:
            break  # a failure left stages waiting, or nothing could start
        done = _wait_any(running)
        stage, process, started = running.pop(done)
        code = process.returncode
        if code != 0:
            print(f"error: stage failed (exit {code}): {stage.line()}", file=sys.stderr, flush=True)
            failure = failure or code
            continue
        finished.add(done)
        print(f"[plan] {stage.module} -> {stage.output}: {time.monotonic() - started:.0f} s", flush=True)
    if failure:
        return failure
    if waiting:
        print(f"error: {len(waiting)} stages could not start: {waiting[0].line()}", file=sys.stderr)
        return 1
    return 0


def _wait_any(running: dict[int, tuple[Stage, subprocess.Popen, float]]) -> int:
    """The key of a finished process (polling; a lane count is small)."""
    while True:
        for key, (_, process, _) in running.items():
            if process.poll() is not None:
                return key
        time.sleep(0.2)
