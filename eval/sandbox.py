"""Run untrusted code against a task's tests, contained, and give each item one outcome.

Each program runs in a fresh ``python -I`` subprocess, in its own temporary directory and process session,
without network (a network namespace where the kernel allows one, and the socket API removed in any case),
with process, signal and file-system calls removed, writes confined to its directory, and memory, CPU time
and file size capped (:mod:`eval.sandbox_child`). The parent enforces a wall-clock timeout and kills the
whole process group. Items run in parallel on a thread pool, one subprocess each.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

CHILD = Path(__file__).with_name("sandbox_child.py")

OUTCOMES = (
    "passed",
    "failed_assertion",
    "timeout",
    "syntax_error_unbalanced_brackets",
    "syntax_error_other",
    "undefined_name",
    "runtime_error",
    "no_code",
)


@dataclass
class ExecutionJob:
    """One program and its tests: ``test`` source to exec after the code, and/or ``inputs`` checked
    against ``expected`` outputs (or against a trusted ``reference`` solution run first)."""

    code: str
    test: str | None = None
    entry_point: str | None = None
    inputs: list | None = None
    expected: list | None = None
    reference: str | None = None
    atol: float = 0.0
    oracle: str | None = None
    timeout_s: float = 10.0
    memory_bytes: int | None = 4 << 30  # evalplus's default cap

    def payload(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "test": self.test,
            "entry_point": self.entry_point,
            "inputs": self.inputs,
            "expected": self.expected,
            "reference": self.reference,
            "atol": self.atol,
            "oracle": self.oracle,
            "memory_bytes": self.memory_bytes,
            "cpu_seconds": max(1, int(self.timeout_s) + 1),
        }


@dataclass
class ExecutionResult:
    outcome: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@functools.lru_cache(maxsize=1)
def _network_namespace_prefix() -> tuple[str, ...]:
    """``unshare -n`` when this kernel lets us make a network namespace; otherwise nothing extra."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    for prefix in ((unshare, "-n"), (unshare, "-r", "-n")):
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=5).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return prefix
    return ()


def execute(job: ExecutionJob) -> ExecutionResult:
    """Run one job in the sandbox and return its outcome."""
    with tempfile.TemporaryDirectory(prefix="sandbox-") as root:
        root_path = Path(root)
        workdir = root_path / "work"
        workdir.mkdir()
        job_path = root_path / "job.pickle"  # pickle keeps tuples and sets in MBPP+ inputs
        result_path = root_path / "result.json"
        job_path.write_bytes(pickle.dumps(job.payload()))
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "PYTHONHASHSEED": "0",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "LANG": "C.UTF-8",
        }
        command = [
            *_network_namespace_prefix(),
            sys.executable,
            "-I",
            str(CHILD),
            str(job_path),
            str(result_path),
        ]
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        timed_out = False
        try:
            process.wait(timeout=job.timeout_s + 2.0)  # + interpreter start-up and reference outputs
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(process)
        text = result_path.read_text(encoding="utf-8") if result_path.exists() else ""
        if text:
            result = json.loads(text)
            return ExecutionResult(result["outcome"], result.get("detail", ""))
        if timed_out or process.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            return ExecutionResult("timeout", f"no result within {job.timeout_s:g}s")
        return ExecutionResult(
            "runtime_error", f"the program ended without a result (exit {process.returncode})"
        )


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def execute_many(
    jobs: list[ExecutionJob], *, workers: int | None = None, progress: bool = True
) -> list[ExecutionResult]:
    """Run jobs in parallel (``workers`` defaults to the number of CPUs); results in job order."""
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(
            tqdm(
                pool.map(execute, jobs),
                total=len(jobs),
                desc="execute",
                unit="item",
                disable=not progress,
                leave=False,
            )
        )
