"""Runs one untrusted program inside the sandbox (started by :mod:`eval.sandbox`; stdlib only).

Usage: python -I sandbox_child.py job.pickle result.json

Order matters: the result file is opened and the trusted reference solution (MBPP+ plus inputs) is run
before the guard is installed; then the untrusted code runs with process, signal, network and file-system
functions removed, writes allowed only under the working (temporary) directory, and memory and CPU capped.
"""

import builtins
import copy
import io
import json
import os
import pickle
import resource
import sys
import tokenize

OUTCOME_PASSED = "passed"
OUTCOME_ASSERTION = "failed_assertion"
OUTCOME_UNBALANCED = "syntax_error_unbalanced_brackets"
OUTCOME_SYNTAX = "syntax_error_other"
OUTCOME_UNDEFINED = "undefined_name"
OUTCOME_RUNTIME = "runtime_error"

BRACKET_MESSAGES = ("was never closed", "unmatched", "does not match opening parenthesis", "unexpected EOF")


def brackets_unbalanced(code):
    """True when the code's brackets (outside strings and comments) do not pair up."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type != tokenize.OP:
                continue
            if token.string in "([{":
                stack.append(token.string)
            elif token.string in pairs:
                if not stack or stack.pop() != pairs[token.string]:
                    return True
    except tokenize.TokenError as error:
        return "multi-line statement" in str(error) or bool(stack)
    except (SyntaxError, IndentationError):
        return False
    return bool(stack)


def classify_exception(error):
    if isinstance(error, AssertionError):
        return OUTCOME_ASSERTION
    if isinstance(error, NameError):
        return OUTCOME_UNDEFINED
    return OUTCOME_RUNTIME


def close_enough(out, exp, atol):
    """numpy.allclose(out, exp, rtol=1e-7, atol) for numbers and flat sequences, without numpy."""
    if isinstance(exp, (list, tuple)):
        if not isinstance(out, (list, tuple)) or len(out) != len(exp):
            return False
        return all(close_enough(o, e, atol) for o, e in zip(out, exp))
    if isinstance(out, bool) or isinstance(exp, bool) or not isinstance(out, (int, float)):
        return out == exp
    return abs(out - exp) <= atol + 1e-7 * abs(exp)


def is_floats(value):
    if isinstance(value, float):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, float) for v in value)


def install_guard(workdir, memory_bytes, cpu_seconds):
    """Remove what a test program has no business calling; confine writes to ``workdir``."""
    import shutil
    import signal
    import socket
    import subprocess
    import threading  # noqa: F401 - imported before os.register_at_fork goes

    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    workdir = os.path.realpath(workdir)
    real_open = builtins.open
    real_os_open = os.open

    def inside(path):
        try:
            target = os.path.realpath(os.fspath(path))
        except TypeError:
            return False
        return target == workdir or target.startswith(workdir + os.sep)

    def guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, int) or (any(flag in mode for flag in "wax+") and not inside(file)):
            raise PermissionError(f"sandbox: writing {file!r} outside the working directory is not allowed")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        if writing and not inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the working directory is not allowed")
        return real_os_open(path, flags, *args, **kwargs)

    builtins.open = guarded_open
    io.open = guarded_open
    os.open = guarded_os_open

    def disabled(name):
        def refuse(*args, **kwargs):
            raise PermissionError(f"sandbox: {name} is not allowed")

        return refuse

    for name in (
        "kill",
        "killpg",
        "fork",
        "forkpty",
        "vfork",
        "system",
        "popen",
        "execv",
        "execve",
        "execl",
        "execle",
        "execlp",
        "execlpe",
        "execvp",
        "execvpe",
        "spawnl",
        "spawnle",
        "spawnlp",
        "spawnlpe",
        "spawnv",
        "spawnve",
        "spawnvp",
        "spawnvpe",
        "posix_spawn",
        "posix_spawnp",
        "remove",
        "unlink",
        "rmdir",
        "removedirs",
        "rename",
        "renames",
        "replace",
        "truncate",
        "ftruncate",
        "chmod",
        "chown",
        "lchown",
        "fchmod",
        "fchown",
        "link",
        "symlink",
        "putenv",
        "unsetenv",
        "setuid",
        "setgid",
        "seteuid",
        "setegid",
        "chdir",
        "fchdir",
        "chroot",
        "mkfifo",
        "mknod",
        "setsid",
        "setpgid",
        "plock",
        "nice",
    ):
        if hasattr(os, name):
            setattr(os, name, disabled(f"os.{name}"))
    for name in ("rmtree", "move", "chown", "copy", "copy2", "copyfile", "copytree"):
        setattr(shutil, name, disabled(f"shutil.{name}"))
    subprocess.Popen = disabled("subprocess.Popen")
    for name in ("run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"):
        setattr(subprocess, name, disabled(f"subprocess.{name}"))
    for name in ("pthread_kill", "raise_signal", "signal", "alarm", "setitimer"):
        if hasattr(signal, name):
            setattr(signal, name, disabled(f"signal.{name}"))
    for name in ("socket", "create_connection", "create_server", "socketpair", "fromfd"):
        setattr(socket, name, disabled(f"socket.{name}"))
    # Modules that would reach around the guard are made unimportable.
    for name in (
        "ctypes",
        "_ctypes",
        "multiprocessing",
        "_posixsubprocess",
        "pty",
        "resource",
        "_socket",
        "urllib.request",
        "http.client",
        "ftplib",
        "telnetlib",
        "smtplib",
        "asyncio",
    ):
        sys.modules[name] = None
    builtins.exit = builtins.quit = disabled("exit")


def run(job):
    code = job["code"]
    try:
        compiled = compile(code, "<solution>", "exec")
    except SyntaxError as error:
        message = str(error)
        if brackets_unbalanced(code) or any(m in message for m in BRACKET_MESSAGES):
            return OUTCOME_UNBALANCED, message
        return OUTCOME_SYNTAX, message

    namespace = {"__name__": "__main__"}
    try:
        exec(compiled, namespace)
        if job.get("test"):
            exec(compile(job["test"], "<test>", "exec"), namespace)
        if job.get("inputs") is not None:
            function = namespace[job["entry_point"]]
            atol = job.get("atol") or 0
            for args, expected in zip(job["inputs"], job["expected"]):
                out = function(*copy.deepcopy(args))
                if expected is None and job.get("expected_error"):
                    continue
                tolerance = atol if atol or not is_floats(expected) else 1e-6
                exact = out == expected or _special_oracle(job, out, expected, args)
                assert exact or (tolerance and close_enough(out, expected, tolerance)), "output differs"
    except BaseException as error:  # noqa: BLE001 - every failure of untrusted code is an outcome
        if (
            isinstance(error, KeyError)
            and job.get("inputs") is not None
            and job["entry_point"] not in namespace
        ):
            return OUTCOME_UNDEFINED, f"name {job['entry_point']!r} is not defined"
        return classify_exception(error), f"{type(error).__name__}: {error}"[:500]
    return OUTCOME_PASSED, ""


def _special_oracle(job, out, expected, args):
    """evalplus's per-task oracles, for the tasks whose outputs are sets or only need to be non-None."""
    oracle = job.get("oracle")
    if oracle == "set":
        try:
            return set(out) == set(expected)
        except TypeError:
            return False
    if oracle == "not_none":
        expected = expected if isinstance(expected, bool) else expected is not None
        return out == expected if isinstance(out, bool) else expected == (out is not None)
    if oracle == "always":
        return True
    if oracle == "zero_ok":
        return out == 0
    return False


def main():
    job_path, result_path = sys.argv[1], sys.argv[2]
    with open(job_path, "rb") as handle:
        job = pickle.load(handle)  # written by the trusted parent
    result = open(result_path, "w", encoding="utf-8")
    if job.get("reference") is not None and job.get("inputs") is not None:
        reference = {"__name__": "__reference__"}
        exec(compile(job["reference"], "<reference>", "exec"), reference)
        function = reference[job["entry_point"]]
        job["expected"] = [function(*copy.deepcopy(args)) for args in job["inputs"]]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    install_guard(os.getcwd(), job.get("memory_bytes"), job.get("cpu_seconds", 10))
    sink = io.StringIO()
    sys.stdout, sys.stderr, sys.stdin = sink, sink, io.StringIO()
    outcome, detail = run(job)
    result.write(json.dumps({"outcome": outcome, "detail": detail}))
    result.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
