"""Runs one untrusted program inside the sandbox (started by :mod:`eval.sandbox`; stdlib only).

Usage: python -I sandbox_child.py <job.pickle> <result fd> isolated|guard

The trusted part reads the job, points the standard streams at /dev/null, sets resource limits, runs the
reference solution (MBPP+ plus inputs) and, in ``guard`` mode only (no OS isolation), removes dangerous
functions; then the untrusted code runs. One message goes to the result pipe: a JSON line carrying the
job's nonce and the outcome, then, for jobs with inputs, the candidate's and the reference's outputs pickled
as exact builtin values (:class:`PlainPickler`) for the parent to compare. Outputs over 64 MiB are compared
here instead, with the same rules, and the detail says so.
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
OUTCOME_TIMEOUT = "timeout"
OUTCOME_UNBALANCED = "syntax_error_unbalanced_brackets"
OUTCOME_SYNTAX = "syntax_error_other"
OUTCOME_UNDEFINED = "undefined_name"
OUTCOME_RUNTIME = "runtime_error"

BRACKET_MESSAGES = ("was never closed", "unmatched", "does not match opening parenthesis", "unexpected EOF")
MAX_OUTPUT_BYTES = 64 << 20  # larger outputs are compared here, not sent


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
    if isinstance(error, RecursionError):
        return OUTCOME_TIMEOUT  # the original analysis counts "maximum recursion depth" as a timeout
    return OUTCOME_RUNTIME


class PlainPickler(pickle.Pickler):
    """Pickles outputs as exact builtin values: an ``int`` subclass whose ``__eq__`` lies becomes a plain
    int, numpy values become lists and numbers, anything else the text of its ``repr``. ``reducer_override``
    runs only for objects that are not exact builtins, so plain data pickles at C speed."""

    def reducer_override(self, obj):
        # Each conversion makes a new object of the exact base type (for a subclass, ``int.__index__`` and
        # the like may return the object itself, which would loop).
        if type(obj) is type and obj in (int, float, str, bytes, complex, tuple, list, set, frozenset, dict):
            return NotImplemented  # the constructors named in our reductions: pickled as globals
        if isinstance(obj, int):
            return int, (int.__add__(obj, 0),)
        if isinstance(obj, float):
            return float, (float.__mul__(obj, 1.0),)
        if isinstance(obj, str):
            return str, ("".join([obj]),)
        if isinstance(obj, (bytes, bytearray)):
            return bytes, (bytes(memoryview(obj)),)
        if isinstance(obj, complex):
            return complex, (complex.real.__get__(obj), complex.imag.__get__(obj))
        for kind in (tuple, list, set, frozenset):
            if isinstance(obj, kind):
                return kind, (list(kind.__iter__(obj)),)
        if isinstance(obj, dict):
            return dict, (list(dict.items(obj)),)
        if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
            plain = obj.tolist()
            return (list, (plain,)) if isinstance(plain, list) else (type(plain), (plain,))
        return str, (f"<{type(obj).__name__} {repr(obj)[:1000]}>",)


def plain_pickle(value):
    buffer = io.BytesIO()
    PlainPickler(buffer, protocol=4).dump(value)
    return buffer.getvalue()


def install_limits(memory_bytes, cpu_seconds):
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Counts every process of this uid; uid 0 outside the user namespace is exempt (see docs/sandbox.md).
    resource.setrlimit(resource.RLIMIT_NPROC, (512, 512))


def install_guard(workdir):
    """Fallback where the OS gives no isolation: remove what a test program has no business calling.

    Not a security boundary (``posix`` internals, closures and C extensions reach around it); the parent
    logs that this mode is in use and eval manifests record it.
    """
    import posix
    import shutil
    import signal
    import socket
    import subprocess
    import threading  # noqa: F401 - imported before fork handlers go

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
    os.open = posix.open = guarded_os_open

    def disabled(name):
        def refuse(*args, **kwargs):
            raise PermissionError(f"sandbox: {name} is not allowed")

        return refuse

    for name in (
        "kill killpg fork forkpty vfork system popen execv execve spawnv spawnve posix_spawn posix_spawnp "
        "rename replace truncate ftruncate chmod chown lchown fchmod fchown link symlink setuid setgid "
        "seteuid setegid chroot mkfifo mknod setsid setpgid plock nice rmdir removedirs renames"
    ).split():
        for module in (os, posix):
            if hasattr(module, name):
                setattr(module, name, disabled(f"os.{name}"))
    for name in ("rmtree", "move", "chown"):
        setattr(shutil, name, disabled(f"shutil.{name}"))
    subprocess.Popen = disabled("subprocess.Popen")
    for name in ("pthread_kill", "alarm", "setitimer"):
        if hasattr(signal, name):
            setattr(signal, name, disabled(f"signal.{name}"))
    for name in ("socket", "create_connection", "create_server", "socketpair", "fromfd"):
        setattr(socket, name, disabled(f"socket.{name}"))
    for name in ("ctypes", "_ctypes", "multiprocessing", "_posixsubprocess", "pty", "resource", "_socket"):
        sys.modules[name] = None


def run(job):
    """``(outcome, detail, outputs)`` for the job's code and tests."""
    code = job["code"]
    try:
        compiled = compile(code, "<solution>", "exec")
    except SyntaxError as error:
        message = str(error)
        if brackets_unbalanced(code) or any(m in message for m in BRACKET_MESSAGES):
            return OUTCOME_UNBALANCED, message, None
        return OUTCOME_SYNTAX, message, None
    namespace = {"__name__": "__main__"}
    outputs = None
    try:
        exec(compiled, namespace)
        if job.get("test"):
            exec(compile(job["test"], "<test>", "exec"), namespace)
        if job.get("inputs") is not None:
            if job["entry_point"] not in namespace:
                return OUTCOME_UNDEFINED, f"name {job['entry_point']!r} is not defined", None
            function = namespace[job["entry_point"]]
            outputs = [function(*copy.deepcopy(args)) for args in job["inputs"]]
    except BaseException as error:  # noqa: BLE001 - every failure of untrusted code is an outcome
        return classify_exception(error), f"{type(error).__name__}: {error}"[:500], None
    return OUTCOME_PASSED, "", outputs


def compare_here(outputs, expected, job):
    """For outputs too large to send: compare exact-type copies here, with the parent's rules."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from code_compare import outputs_match  # eval/code_compare.py, bound read-only beside this file

    return outputs_match(outputs, expected, job.get("atol") or 0.0, job.get("oracle"))


def reference_outputs(job):
    """The trusted reference solution's outputs, computed before any untrusted code runs."""
    namespace = {"__name__": "__reference__"}
    exec(compile(job["reference"], "<reference>", "exec"), namespace)
    function = namespace[job["entry_point"]]
    return [function(*copy.deepcopy(args)) for args in job["inputs"]]


def main():
    job_path, result_fd, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(job_path, "rb") as handle:
        job = pickle.load(handle)  # written by the trusted parent
    nonce = job.pop("nonce")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    install_limits(job.get("memory_bytes"), job.get("cpu_seconds", 31))
    sink = io.StringIO()
    sys.stdout, sys.stderr, sys.stdin = sink, sink, io.StringIO()
    expected = job.get("expected")
    if job.get("reference") is not None:
        try:
            expected = pickle.loads(plain_pickle(reference_outputs(job)))
        except BaseException as error:  # noqa: BLE001 - reported as this item's error
            expected = None
            job["reference_error"] = f"{type(error).__name__}: {error}"[:500]
    if mode == "guard":
        install_guard(os.getcwd())
    blob = b""
    if job.get("reference_error"):
        outcome, detail = OUTCOME_RUNTIME, "sandbox: the reference solution failed: " + job["reference_error"]
    else:
        outcome, detail, outputs = run(job)
    message = {"nonce": nonce, "outcome": outcome, "detail": detail}
    if job.get("inputs") is not None and outcome == OUTCOME_PASSED:
        try:
            blob = plain_pickle(outputs)
            del outputs
            if len(blob) > MAX_OUTPUT_BYTES:
                passed, detail = compare_here(pickle.loads(blob), expected, job)
                blob = b""
                message.update(
                    outcome=OUTCOME_PASSED if passed else OUTCOME_ASSERTION,
                    detail=detail or "compared in the sandbox: outputs too large to send",
                )
            else:
                blob = plain_pickle([pickle.loads(blob), expected])
                message["outcome"] = "completed"
        except BaseException as error:  # noqa: BLE001 - an output that cannot be pickled fails the item
            blob = b""
            message.update(outcome=OUTCOME_RUNTIME, detail=f"output not serializable: {error!r}"[:500])
    message["outputs_bytes"] = len(blob)
    data = json.dumps(message).encode() + b"\n" + blob
    view = memoryview(data)
    while view:
        view = view[os.write(result_fd, view) :]
    os._exit(0)


if __name__ == "__main__":
    main()
