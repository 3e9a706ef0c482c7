"""Run an experiment script on a SLURM cluster: its stages as jobs with dependencies, then a report.

    bash scripts/slurm/submit.sh scripts/table2_recovery.sh llama-3.1-8b-instruct
    python -m orchestration.slurm --script scripts/figures1-4_sweep.sh --model_config llama-3.1-8b-instruct --wait
    python -m orchestration.slurm --report outputs/llama-3.1-8b-instruct/slurm/submission-20261130-101500.json

The jobs come from the script's graph (:mod:`orchestration.plan`, the stages ``PLAN=1 bash <script> <model
config>`` prints; ``scripts/paper.sh``: every artifact's): every stage still to run (complete stages are
skipped, and so is a stage whose job is already queued or running: its dependents wait for that job), so a
resubmission after a failure, or a second script submitted beside a first, submits only what is missing.
Each stage becomes one job, except

- the single-layer sweep: an array with one task per missing layer (``--layer $SLURM_ARRAY_TASK_ID``), then
  the collecting run (baseline, manifest);
- the iterative search: a baseline job, then per step an array with one task per block of candidates that
  share one engine (``--block_size``, ``--candidate_block``), each step after the one before, then the run
  that writes the search's order.

A job waits (``--dependency=afterok``) for every job that writes a path it reads, so the tables come last.
Resources per stage come from ``--resources`` (configs/slurm/*.yaml), the GPUs, CPUs and memory times the
processes a stage's launcher starts (full fine-tuning under ``accelerate``), and each job's time limit from
the A100-hour estimate of its stage with the file's margin (:mod:`orchestration.gpu_hours`); ``--sbatch=...``
or sbatch's own variables (``SBATCH_PARTITION``, ``SBATCH_ACCOUNT``) add site options. Jobs inherit the submitting shell's
environment: activate the project's environment first. Logs and the submission record go to
``$OUT/<model config>/slurm/``.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from infra.config import ConfigError, parse_cli
from infra.files import atomic_write_json, read_json
from infra.paths import REPO_ROOT
from orchestration.slurm_jobs import Job, array_spec, build_jobs

# States after which a job or array task does nothing more (squeue/scontrol's JobState).
FINAL_STATES = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
}
NEVER_SATISFIED = "DependencyNeverSatisfied"


@dataclass
class SubmitArgs:
    script: str | None = field(default=None, metadata={"help": "scripts/<artifact>.sh, or scripts/paper.sh"})
    model_config: str | None = field(default=None, metadata={"help": "configs/models name"})
    resources: str = field(default="configs/slurm/a100.yaml", metadata={"help": "sbatch options per stage"})
    sbatch: str = field(default="", metadata={"help": 'extra sbatch options: --sbatch="--partition=gpu"'})
    max_parallel: int | None = field(default=None, metadata={"help": "array tasks running at once"})
    block_size: int | None = field(
        default=None,
        metadata={"help": "search candidates per array task, sharing one engine [a step's candidates / 8]"},
    )
    dry_run: bool = field(default=False, metadata={"help": "print the sbatch commands, submit nothing"})
    wait: bool = field(default=False, metadata={"help": "wait for the jobs, then report (exit 1 on failure)"})
    report: str | None = field(default=None, metadata={"help": "report on an earlier submission record"})
    poll_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.report is None and (self.script is None or self.model_config is None):
            raise ConfigError("give --script and --model_config (or --report <submission record>)")
        if self.script is not None and not (REPO_ROOT / self.script).is_file():
            raise ConfigError(f"key 'script': no such script {self.script}")
        if self.max_parallel is not None and self.max_parallel < 1:
            raise ConfigError(f"key 'max_parallel': expected >= 1, got {self.max_parallel}")
        if self.block_size is not None and self.block_size < 1:
            raise ConfigError(f"key 'block_size': expected >= 1, got {self.block_size}")


# --- resources and submission ------------------------------------------------------------------------------

PER_PROCESS = ("gres", "cpus-per-task", "mem")  # options that grow with the processes a stage starts


def load_resources(path: str) -> dict[str, Any]:
    """``{"default": {...}, "stages": {module: {...}}, "margin": float, "max_hours": float}``: sbatch long
    options per stage module, and how a job's time limit is made from its estimate."""
    file = REPO_ROOT / path
    if not file.is_file():
        raise ConfigError(f"key 'resources': no such file {path}")
    data = yaml.safe_load(file.read_text()) or {}
    unknown = set(data) - {"default", "stages", "time_margin", "max_hours"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))} (expected default, stages, time_margin, max_hours)"
        )
    for key in ("default", *(f"stages.{s}" for s in data.get("stages") or {})):
        value = data["default"] if key == "default" else data["stages"][key.split(".", 1)[1]]
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: key '{key}' must map sbatch options to values")
    return {
        "default": data.get("default") or {},
        "stages": data.get("stages") or {},
        "time_margin": float(data.get("time_margin", 0)),
        "max_hours": data.get("max_hours"),
    }


def _scaled(option: str, value: Any, processes: int) -> Any:
    """A per-GPU option for a stage of several processes: gpu:1 -> gpu:N, 8 CPUs -> 8N, 64G -> 64N G."""
    if processes == 1 or value is None:
        return value
    text = str(value)
    if option == "gres":
        kind, _, count = text.rpartition(":")
        return f"{kind}:{int(count) * processes}" if count.isdigit() else text
    number = re.match(r"^(\d+)(\D*)$", text)
    return f"{int(number.group(1)) * processes}{number.group(2)}" if number else text


def slurm_time(hours: float) -> str:
    minutes = max(10, math.ceil(hours * 60))
    return f"{minutes // 60}:{minutes % 60:02d}:00"


def job_options(resources: dict[str, Any], job: Job) -> dict[str, Any]:
    """The sbatch options of a job: its stage module's (or the default), per-GPU options times the processes
    its launcher starts, and its time limit from the estimate (with the file's margin) where there is one."""
    options = {**resources["default"], **resources["stages"].get(job.module, {})}
    if job.stage.processes > 1 and options.get("gres") is None:
        options["gres"] = "gpu:1"
    options = {
        key: _scaled(key, value, job.stage.processes) if key in PER_PROCESS else value
        for key, value in options.items()
    }
    if job.hours is not None:
        options["time"] = slurm_time(job.hours)
    return options


def resource_flags(options: dict[str, Any]) -> list[str]:
    return [f"--{key}={value}" for key, value in options.items() if value is not None]


def sbatch_command(
    job: Job,
    ids: list[str],
    log_dir: Path,
    resources: dict[str, Any],
    extra: list[str],
    max_parallel: int | None,
) -> list[str]:
    command = [
        "sbatch", "--parsable", f"--job-name={job.name}", f"--output={job.log(log_dir)}", f"--chdir={REPO_ROOT}",
        f"--comment={job.comment()}",
    ]  # fmt: skip
    if job.array:
        command.append(f"--array={array_spec(job.array)}" + (f"%{max_parallel}" if max_parallel else ""))
    if job.after:
        command.append(
            "--dependency=afterok:" + ":".join(ids[i] if isinstance(i, int) else i for i in job.after)
        )
    return [*command, *resource_flags(job_options(resources, job)), *extra, f"--wrap={job.wrap()}"]


ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}


def slurm_config_found() -> bool:
    """Whether this machine's SLURM client has a configuration to read (``SLURM_CONF``, the default file, or
    a configless node's cached copy). Without one, squeue looks the controller up in DNS for about a minute."""
    paths = [os.environ.get("SLURM_CONF"), "/etc/slurm/slurm.conf", "/run/slurm/conf/slurm.conf"]
    return any(path and Path(path).is_file() for path in paths)


def queued_jobs(dry_run: bool = False) -> dict[tuple[str, str], str]:
    """``(name, comment) -> job id`` of the jobs in the queue that are pending or running (an array's id for
    its tasks); empty where squeue is missing. A submission fails where squeue cannot read the queue (it
    would duplicate queued jobs); a dry run says so and shows every job, and reads no queue on a machine
    with no SLURM configuration."""
    if dry_run and not slurm_config_found():
        print("[slurm] dry run: no SLURM configuration here; every stage is shown", file=sys.stderr)
        return {}
    try:
        result = subprocess.run(
            ["squeue", "-h", "-o", "%i|%j|%T|%k"], capture_output=True, text=True, timeout=120
        )
    except FileNotFoundError:
        return {}
    except subprocess.TimeoutExpired:
        result = subprocess.CompletedProcess([], 124, "", "squeue did not answer within 120 s")
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
        if dry_run:
            print(
                f"[slurm] dry run: the queue could not be read ({reason}); every stage is shown",
                file=sys.stderr,
            )
            return {}
        raise RuntimeError(f"squeue failed (exit {result.returncode}): {result.stderr.strip()}")
    found: dict[tuple[str, str], str] = {}
    for line in result.stdout.splitlines():
        parts = line.split("|", 3)
        if len(parts) == 4 and parts[2] in ACTIVE_STATES:
            found.setdefault((parts[1], parts[3]), parts[0].split("_", 1)[0])
    return found


def plan_jobs(args: SubmitArgs) -> tuple[Path, list[Job], int]:
    """The jobs of the script's plan still to submit, each with its time from the estimate; and how many
    stages were already queued."""
    from orchestration.gpu_hours import stage_hours
    from orchestration.plan import plan_stages
    from orchestration.study import load_study

    assert args.script is not None and args.model_config is not None
    name = Path(args.script).stem
    plan = plan_stages(name, args.model_config, load_study())
    results = Path(plan.results)
    queued = queued_jobs(args.dry_run)
    jobs = build_jobs(
        plan.graph, args.model_config, results, queued, args.block_size or plan.study.search_block
    )
    resources = load_resources(args.resources)
    margin, ceiling = resources["time_margin"], resources["max_hours"]
    if margin:
        for job in jobs:
            estimate = stage_hours(plan, job.stage, share=_share(job))
            if estimate > 0:  # the CPU stages (data preparation, the tables) keep the file's limit
                hours = estimate * (1 + margin) + 0.5
                job.hours = min(hours, float(ceiling)) if ceiling else hours
    return results, jobs, len(plan.graph.stages) - len({id(job.stage) for job in jobs})


def _share(job: Job) -> float:
    """The part of its stage's work one job (or one task of an array) does."""
    stage = job.stage
    if job.array and stage.layers:
        return 1 / len(stage.layers)
    if job.array and stage.search is not None:
        return 1 / stage.search.steps / max(1, len(job.array))
    if stage.search is not None and job.name.endswith(".baseline"):
        return 0.02
    if (stage.layers or stage.search is not None) and not job.array:
        return 0.05  # the collecting run
    return 1.0


def submit(args: SubmitArgs) -> Path | None:
    """Submit the script's missing stages; returns the submission record (None for a dry run or nothing)."""
    assert args.script is not None and args.model_config is not None
    if not args.dry_run:
        from orchestration.local import build_model
        from orchestration.study import load_study

        if build_model(load_study()) != 0:  # a CPU study's own model, before its jobs read it
            raise RuntimeError("the study's model could not be built (its error is above)")
    results, jobs, already = plan_jobs(args)
    if already:
        print(f"[slurm] {already} stage(s) already queued or running: not submitted again")
    if not jobs:
        print(
            f"[slurm] {args.script} {args.model_config}: every stage is complete or queued; nothing to submit"
        )
        return None
    resources = load_resources(args.resources)
    log_dir = (REPO_ROOT / results / "slurm").resolve()
    extra = shlex.split(args.sbatch)
    ids: list[str] = []
    records = []
    if not args.dry_run:
        log_dir.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        command = sbatch_command(job, ids, log_dir, resources, extra, args.max_parallel)
        if args.dry_run:
            ids.append(f"<{len(ids)}>")
            print(shlex.join(command))
            continue
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"sbatch failed for {job.name} (exit {result.returncode}): {result.stderr.strip()}"
            )
        ids.append(result.stdout.strip().split(";")[0])
        log = str(job.log_of(log_dir, ids[-1]))
        after_ids = [ids[i] if isinstance(i, int) else i for i in job.after]
        tasks = f" {job.array_label}s {array_spec(job.array)}" if job.array else ""
        after = f" after {','.join(after_ids)}" if after_ids else ""
        print(f"[slurm] {ids[-1]} {job.name}{tasks}{after}  log: {log}")
        records.append(
            {
                "id": ids[-1],
                "name": job.name,
                "stage": job.module,
                "command": job.wrap(),
                "array": job.array,
                "array_label": job.array_label,
                "after": after_ids,
                "log": log,
            }
        )
    if args.dry_run:
        return None
    record = log_dir / f"submission-{datetime.now():%Y%m%d-%H%M%S-%f}.json"
    atomic_write_json(record, {"script": args.script, "model_config": args.model_config, "jobs": records})
    print(f"[slurm] {len(records)} jobs submitted; record: {record}")
    print(f"[slurm] follow: python -m orchestration.slurm --report {record} [--wait]")
    return record


# --- report ------------------------------------------------------------------------------------------------


def job_states(job_id: str) -> list[dict[str, str]]:
    """The controller's records of a job (one per array task once tasks exist). A job the controller has
    forgotten (finished longer ago than its MinJobAge) is looked up in the accounting database (sacct), where
    there is one; else its state is UNKNOWN."""
    result = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True)
    if result.returncode == 0:
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in result.stdout.splitlines() if line.strip()]
    accounted = subprocess.run(
        ["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "JobID,State,ExitCode"],
        capture_output=True,
        text=True,
    )
    rows = [line.split("|") for line in accounted.stdout.splitlines() if line.count("|") == 2]
    if accounted.returncode == 0 and rows:
        return [
            {"JobId": jid, "ArrayTaskId": jid.split("_", 1)[1] if "_" in jid else "", "JobState": state.split()[0],
             "ExitCode": code}
            for jid, state, code in rows
        ]  # fmt: skip
    reason = (result.stderr.strip() or "not known to the controller").replace(" ", "_")
    return [{"JobId": job_id, "JobState": "UNKNOWN", "Reason": reason}]


def _finished(state: dict[str, str]) -> bool:
    # UNKNOWN: neither the controller nor accounting knows the job; waiting longer would not change that.
    return state.get("JobState") in FINAL_STATES | {"UNKNOWN"} or state.get("Reason") == NEVER_SATISFIED


def report(record_path: Path, wait: bool = False, poll_seconds: float = 10.0) -> int:
    """Print each job's outcome (failed tasks with their exit code and log); 0 when every job completed."""
    record = read_json(record_path)
    while True:
        states = {job["id"]: job_states(job["id"]) for job in record["jobs"]}
        if not wait or all(_finished(s) for ss in states.values() for s in ss):
            break
        time.sleep(poll_seconds)
    counts: dict[str, int] = {}
    problems: list[tuple[bool, str]] = []  # (failed, line): failed, or still to finish
    for job in record["jobs"]:
        for state in states[job["id"]]:
            status = state.get("JobState", "UNKNOWN")
            if state.get("Reason") == NEVER_SATISFIED:
                status = "NEVER_RUN"
                if state.get("JobState") == "PENDING":
                    subprocess.run(["scancel", state["JobId"]], capture_output=True)
            counts[status] = counts.get(status, 0) + 1
            if status == "COMPLETED":
                continue
            task = state.get("ArrayTaskId", "")
            label = f" ({job['array_label']} {task})" if job["array"] and task else ""
            log = state.get("StdOut") or job["log"]
            if status == "NEVER_RUN":
                problems.append(
                    (True, f"NEVER_RUN {job['id']} {job['name']}: a job it waits for failed (cancelled)")
                )
            elif status == "UNKNOWN":
                problems.append(
                    (True, f"UNKNOWN {job['id']} {job['name']}: {state.get('Reason')}; see its log: {log}")
                )
            elif status in FINAL_STATES:
                problems.append(
                    (
                        True,
                        f"{status} {state.get('JobId')} {job['name']}{label} exit {state.get('ExitCode')}  log: {log}",
                    )
                )
            else:
                problems.append((False, f"{status} {state.get('JobId')} {job['name']}{label}  log: {log}"))
    summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    print(f"[slurm] {record_path.name}: {summary}")
    for _, line in problems:
        print(f"[slurm] {line}")
    if any(failed for failed, _ in problems):
        print(
            f"[slurm] after fixing the cause, resubmit: python -m orchestration.slurm --script {record['script']} "
            f"--model_config {record['model_config']}  (only what is missing runs)"
        )
        return 1
    return 0 if not problems else 3  # 3: still running


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(SubmitArgs, argv, doc=__doc__)
    try:
        if args.report is not None:
            return report(Path(args.report), wait=args.wait, poll_seconds=args.poll_seconds)
        record = submit(args)
        if record is not None and args.wait:
            return report(record, wait=True, poll_seconds=args.poll_seconds)
    except (ConfigError, RuntimeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
