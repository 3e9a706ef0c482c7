"""Run untrusted code against a task's tests, isolated by the operating system, one outcome per item.

Each program runs in a fresh ``python -I`` interpreter inside a `bubblewrap <https://github.com/containers/
bubblewrap>`_ sandbox: new user, pid, network, IPC, UTS and cgroup namespaces; uid 65534; the interpreter,
its packages and the system libraries read-only; a private writable work directory and ``/tmp``; nothing
else of the host's file system (no ``/etc``, ``/root``, ``/home``, no repository). The child's own
resource limits cap memory, CPU time, file size and processes, and the parent kills the sandbox at the
wall-clock limit; when the sandbox's pid 1 goes, the kernel ends every process left inside, so nothing
outlives a run.

The result travels on a pipe the parent creates and reads (:func:`execute`): a message must carry the run's
nonce and be well formed, else that item is a ``runtime_error`` with a ``sandbox:`` detail, never an
exception of the whole task. Where expected outputs are known (MBPP+ plus inputs), the child returns the
outputs pickled as exact builtin values (an ``int`` subclass whose ``__eq__`` lies becomes a plain int) and
the parent, which unpickles builtin types only, compares them (:mod:`eval.code_compare`).

A test program that runs in the same interpreter as the code it tests (HumanEval+'s ``check``, MBPP+'s
assertions) can be subverted by code written against it, as in evalplus and the original harness: the
sandbox keeps such code from reaching the machine, not from lying about its own test.

Without bwrap or user namespaces, the older in-process guard (:mod:`eval.sandbox_child`) is the fallback;
:func:`isolation` says which one is used, a warning says so in the log, and eval manifests record it.
``LPR_SANDBOX=bwrap`` makes a missing bwrap an error, ``LPR_SANDBOX=guard`` selects the guard.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import pickle
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.progress import progress as progress_bar

CHILD = Path(__file__).with_name("sandbox_child.py")
SANDBOX_ENV = "LPR_SANDBOX"
MAX_MESSAGE_BYTES = 80 << 20  # the child sends at most 64 MiB of outputs
log = logging.getLogger(__name__)

OUTCOMES = (
    "passed",
    "failed_assertion",
    "timeout",
    "syntax_error_unbalanced_brackets",
    "syntax_error_other",
    "undefined_name",
    "runtime_error",
)


class SandboxError(RuntimeError):
    """The sandbox asked for cannot be set up on this machine."""


@dataclass
class ExecutionJob:
    """One program and its tests: ``test`` source to exec after the code, and/or ``inputs`` whose outputs
    are compared in the parent with ``expected`` (or with those of a trusted ``reference`` solution)."""

    code: str
    test: str | None = None
    entry_point: str | None = None
    inputs: list | None = None
    expected: list | None = None
    reference: str | None = None
    atol: float = 0.0
    oracle: str | None = None
    timeout_s: float = 30.0  # the original code's per-program limit
    memory_bytes: int | None = 4 << 30  # evalplus's default cap

    def payload(self, nonce: str) -> dict[str, Any]:
        return {
            "nonce": nonce,
            "code": self.code,
            "test": self.test,
            "entry_point": self.entry_point,
            "inputs": self.inputs,
            "reference": self.reference,
            "expected": self.expected,
            "atol": self.atol,
            "oracle": self.oracle,
            "memory_bytes": self.memory_bytes,
            "cpu_seconds": max(1, math.ceil(self.timeout_s) + 1),
        }


@dataclass
class ExecutionResult:
    outcome: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


# --------------------------------------------------------------------------------------------- isolation
def _read_only_roots() -> list[str]:
    """Directories the interpreter needs: its installation, the virtual environment, the packages."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    roots.update(p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p)
    ordered = sorted((os.path.realpath(r) for r in roots if os.path.isdir(r)), key=len)
    kept: list[str] = []
    for root in ordered:  # a root inside another one is already visible
        if not any(root == k or root.startswith(k + os.sep) for k in kept):
            kept.append(root)
    # The unresolved venv path too, where it is a link farm pointing elsewhere.
    for path in (sys.prefix, os.path.dirname(sys.executable)):
        if os.path.isdir(path) and not any(path == k or path.startswith(k + os.sep) for k in kept):
            kept.append(path)
    return kept


def bwrap_command(workdir: str, job_file: str, fd: int) -> list[str]:
    """The bubblewrap command line that runs the child on ``job_file`` in ``workdir``."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("bwrap is not installed")
    command = [
        bwrap,
        "--unshare-all",  # user, pid, network, ipc, uts, cgroup namespaces: an empty network
        "--die-with-parent",
        "--new-session",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--hostname",
        "sandbox",
    ]
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            command += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            command += ["--ro-bind", top, top]
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"):
        command += ["--ro-bind-try", path, path]
    # The private /tmp first: an interpreter or venv that lives under /tmp is bound on top of it.
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for root in _read_only_roots():
        if not (root == "/usr" or root.startswith("/usr/")):
            command += ["--ro-bind", root, root]
    command += [
        "--bind",
        workdir,
        "/sandbox/work",
        "--ro-bind",
        job_file,
        "/sandbox/job.pickle",
        "--ro-bind",
        str(CHILD),
        "/sandbox/child.py",
        "--ro-bind",
        str(CHILD.with_name("code_compare.py")),
        "/sandbox/code_compare.py",
        "--chdir",
        "/sandbox/work",
        "--clearenv",
    ]
    for key, value in _child_env("/sandbox/work").items():
        command += ["--setenv", key, value]
    return command + [sys.executable, "-I", "/sandbox/child.py", "/sandbox/job.pickle", str(fd), "isolated"]


def _child_env(workdir: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": "/tmp" if workdir.startswith("/sandbox") else workdir,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
    }


@functools.lru_cache(maxsize=1)
def isolation() -> str:
    """``"bwrap"`` where bubblewrap runs here, else ``"guard"`` (with a warning); see the module doc."""
    wanted = os.environ.get(SANDBOX_ENV, "auto")
    if wanted not in ("auto", "bwrap", "guard"):
        raise SandboxError(f"{SANDBOX_ENV}={wanted!r}: expected auto, bwrap or guard")
    if wanted == "guard":
        log.warning("code sandbox: the in-process guard (%s=guard); programs are NOT isolated", SANDBOX_ENV)
        return "guard"
    reason = _probe_bwrap()
    if reason is None:
        return "bwrap"
    if wanted == "bwrap":
        raise SandboxError(f"{SANDBOX_ENV}=bwrap but bubblewrap cannot run here: {reason}")
    log.warning(
        "code sandbox: bubblewrap cannot run here (%s); falling back to the in-process guard, which does "
        "NOT isolate programs from this machine. Install bubblewrap (apt-get install bubblewrap, or "
        "conda install -c conda-forge bubblewrap) and allow user namespaces.",
        reason,
    )
    return "guard"


def _probe_bwrap() -> str | None:
    """None when a trivial program runs in the sandbox; otherwise why not."""
    try:
        result = execute(ExecutionJob(code="x = 1", test="assert x == 1", timeout_s=20), "bwrap")
        return None if result.passed else f"probe program: {result.outcome} {result.detail}"
    except (OSError, SandboxError) as error:
        return str(error)


# --------------------------------------------------------------------------------------------- execution
def execute(job: ExecutionJob, mode: str | None = None) -> ExecutionResult:
    """Run one job in the sandbox (``mode``: bwrap or guard; default :func:`isolation`)."""
    mode = mode or isolation()
    with tempfile.TemporaryDirectory(prefix="sandbox-") as root:
        message, blob = _run(root, job, mode)
    if isinstance(message, ExecutionResult):
        return message
    if message.get("outcome") != "completed" or job.inputs is None:
        return _as_result(message)
    from eval.code_compare import load_plain, outputs_match

    try:
        outputs, expected = load_plain(blob)
    except Exception as error:  # noqa: BLE001 - anything unreadable is this item's error
        return ExecutionResult("runtime_error", f"sandbox: malformed outputs ({error})"[:500])
    if job.expected is not None:
        expected = job.expected
    if not isinstance(outputs, list) or len(outputs) != len(job.inputs) or expected is None:
        return ExecutionResult("runtime_error", "sandbox: malformed outputs")
    ok, detail = outputs_match(outputs, expected, job.atol, job.oracle, job.inputs)
    return ExecutionResult("passed" if ok else "failed_assertion", detail)


def _as_result(message: dict[str, Any]) -> ExecutionResult:
    outcome = message.get("outcome")
    detail = message.get("detail", "")
    if outcome not in OUTCOMES or not isinstance(detail, str):
        return ExecutionResult("runtime_error", f"sandbox: malformed result (outcome {outcome!r})"[:500])
    return ExecutionResult(outcome, detail[:500])


def _run(root: str, job: ExecutionJob, mode: str) -> tuple[dict[str, Any] | ExecutionResult, bytes]:
    """Start the child, read its one message from our pipe, enforce the wall clock, kill what is left."""
    workdir = Path(root) / "work"
    workdir.mkdir()
    job_file = Path(root) / "job.pickle"
    nonce = secrets.token_hex(16)
    job_file.write_bytes(pickle.dumps(job.payload(nonce)))  # pickle keeps tuples and sets of inputs
    read_end, write_end = os.pipe()
    try:
        if mode == "bwrap":
            os.chmod(root, 0o755)
            os.chmod(workdir, 0o777)  # the child is uid 65534 inside its user namespace
            command = bwrap_command(str(workdir), str(job_file), write_end)
            env = None
        else:
            command = [sys.executable, "-I", str(CHILD), str(job_file), str(write_end), "guard"]
            env = _child_env(str(workdir))
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE if mode == "bwrap" else subprocess.DEVNULL,
            start_new_session=True,
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    deadline = time.monotonic() + job.timeout_s + 2.0  # + interpreter start-up
    data, timed_out = _read_until_eof(read_end, deadline)
    os.close(read_end)
    _kill_group(process)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if mode == "bwrap" and process.returncode not in (0, None) and not data and stderr.startswith("bwrap:"):
        raise SandboxError(stderr.strip().splitlines()[0])
    if data:
        header, _, blob = data.partition(b"\n")
        try:
            message = json.loads(header)
        except (json.JSONDecodeError, UnicodeDecodeError):
            message = None
        if (
            not isinstance(message, dict)
            or message.get("nonce") != nonce
            or message.get("outputs_bytes") != len(blob)
        ):
            return ExecutionResult("runtime_error", "sandbox: malformed or forged result message"), b""
        return message, blob
    if timed_out or process.returncode in (-signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGXCPU):
        return ExecutionResult("timeout", f"no result within {job.timeout_s:g}s"), b""
    return (
        ExecutionResult("runtime_error", f"the program ended without a result (exit {process.returncode})"),
        b"",
    )


def _read_until_eof(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything written to the pipe until every writer closed it, or (what came, True) at the deadline."""
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"", True
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return b"", True
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > MAX_MESSAGE_BYTES:
            return b"", False
        chunks.append(chunk)


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
    mode = isolation()  # probe once, before the pool
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(
            progress_bar(
                pool.map(lambda job: execute(job, mode), jobs),
                total=len(jobs),
                desc="execute",
                unit="item",
                disable=not progress,
                leave=False,
            )
        )
