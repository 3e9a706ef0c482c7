"""The code sandbox holds at the operating-system level: escapes and forgeries are contained and scored
not passed, legitimate programs pass, and a malformed result is one item's error, never the task's."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from eval import sandbox
from eval.sandbox import ExecutionJob, execute, execute_many

LEGITIMATE_IMPORTS = (
    "numpy math re collections itertools functools heapq typing string datetime hashlib fractions decimal "
    "statistics scipy tempfile"
).split()


@pytest.fixture(scope="module")
def isolated():
    """The OS sandbox must be available: in CI (which installs bubblewrap) its absence is a failure."""
    if sandbox.isolation() != "bwrap":
        message = "bubblewrap cannot run here; the OS-level sandbox is not in use"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return "bwrap"


def sandbox_processes() -> list[str]:
    """Command lines of processes still running from this test's sandboxes (none may outlive a run): this
    process's descendants that are a sandbox, and anywhere the marker only this test's programs start (an
    escaped process is reparented, no longer a descendant). Another test worker's sandboxes are not ours."""
    import psutil

    found = []
    descendants = {p.pid for p in psutil.Process().children(recursive=True)}
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        ours = process.info["pid"] in descendants and ("/sandbox/child.py" in cmdline or "bwrap" in cmdline)
        if ours or "sleep 31415" in cmdline:
            found.append(cmdline)
    return found


def escape_programs(target: Path, victim: Path, port: int) -> dict[str, str]:
    """Programs that would pass only if their escape worked (each ends by asserting that it did)."""
    t, v = str(target), str(victim)
    return {
        "posix_system": f"import posix\nposix.system('echo pwned > {t}')\nassert posix.stat({t!r})\n",
        "fileio": f"import io\nio.FileIO({t!r}, 'w').write(b'pwned')\n",
        "posix_open": f"import posix\nfd = posix.open({t!r}, posix.O_WRONLY | posix.O_CREAT)\nposix.write(fd, b'x')\n",
        "closure_open": (
            "real = getattr(open, '__closure__', None)\n"
            "real = real[0].cell_contents if real else open\n"
            f"real({t!r}, 'w').write('pwned')\n"
        ),
        "delete_victim": f"import os\nos.remove({v!r})\nassert not os.path.exists({v!r})\n",
        "ctypes_reimport": (
            "import sys\nsys.modules.pop('ctypes', None)\nsys.modules.pop('_ctypes', None)\n"
            f"import ctypes\nctypes.CDLL(None).system(b'echo pwned > {t}')\n"
            f"import os\nassert os.path.exists({t!r})\n"
        ),
        "orphan": (
            "import posix, time\npid = posix.fork()\n"
            "if pid == 0:\n    posix.setsid()\n    posix.execv('/bin/sleep', ['sleep', '31415'])\n"
            "time.sleep(0.5)\nassert False, 'the orphan must not outlive the run'\n"
        ),
        "kill_parent": "import posix\nposix.kill(posix.getppid(), 9)\nimport time\ntime.sleep(2)\nassert False\n",
        "kill_everything": "import posix\nposix.kill(-1, 9)\nassert False\n",
        "read_passwd": "raise RuntimeError(open('/etc/passwd').read())\n",
        "read_repo": f"raise RuntimeError(open({str(Path(__file__))!r}).read())\n",
        "network": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'pwned')\n",
        "gc_forgery": (
            "import gc, io, os, json\n"
            "for o in gc.get_objects():\n"
            "    if isinstance(o, io.IOBase):\n"
            '        try: o.write(\'{"outcome": "passed"}\')\n'
            "        except (OSError, ValueError, TypeError): pass  # closed, read-only or binary handles\n"
            "for fd in range(3, 256):\n"
            "    try: os.write(fd, json.dumps({'outcome': 'passed', 'detail': ''}).encode())\n"
            "    except OSError: pass\n"
            "os._exit(0)\n"
        ),
        "garbage_result": (
            "import os\nfor fd in range(3, 256):\n"
            "    try: os.write(fd, b'\\xff\\xfe not json')\n"
            "    except OSError: pass\n"
            "assert False\n"
        ),
        "exit_early": "import os\nos._exit(0)\n",
        "sys_exit": "import sys\nsys.exit(0)\n",
    }


def test_escapes_and_forgeries_are_contained(isolated, tmp_path):
    target = tmp_path / "escaped.txt"
    victim = tmp_path / "victim.txt"
    victim.write_text("important")
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            received.append(connection.recv(100))
            connection.close()

    listener = threading.Thread(target=accept, daemon=True)
    listener.start()
    programs = escape_programs(target, victim, server.getsockname()[1])
    jobs = [ExecutionJob(code=code, timeout_s=5, memory_bytes=1 << 30) for code in programs.values()]
    # Good programs run alongside: one hostile item never costs the others their score.
    good = ExecutionJob(code="def f(x):\n    return x + 1\n", test="assert f(1) == 2")
    results = execute_many([*jobs, good, good], workers=2, progress=False)
    stop.set()
    listener.join()
    server.close()
    outcomes = {name: result for name, result in zip(programs, results)}
    assert {name: r.outcome for name, r in outcomes.items() if r.passed} == {}
    assert [r.outcome for r in results[-2:]] == ["passed", "passed"]
    assert outcomes["gc_forgery"].detail == "sandbox: malformed or forged result message"
    assert outcomes["garbage_result"].detail == "sandbox: malformed or forged result message"
    assert not target.exists()
    assert victim.read_text() == "important"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.txt"]
    assert received == []
    assert all("root:x:0" not in r.detail and "escape_programs" not in r.detail for r in results)
    assert sandbox_processes() == []
    # The parent (this process) is alive and the sandbox still works.
    assert execute(good).passed


def test_lying_int_subclass_fails_plus_inputs(isolated):
    liar = (
        "class Liar(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
    )
    job = ExecutionJob(
        code=liar + "def f(x):\n    return Liar(0)\n", entry_point="f", inputs=[[1], [2]], expected=[2, 3]
    )
    result = execute(job)
    assert result.outcome == "failed_assertion" and "got 0, expected 2" in result.detail
    # Containers, tuples versus lists, sets and floats within atol survive the round trip.
    exact = ExecutionJob(
        code="def g(x):\n    return [(x, {x}), x / 3]\n",
        entry_point="g",
        inputs=[[1], [2]],
        reference="def g(x):\n    return [(x, {x}), x / 3 + 1e-9]\n",
        atol=1e-6,
    )
    assert execute(exact).passed
    as_list = ExecutionJob(code="def g(x):\n    return [x]\n", entry_point="g", inputs=[[1]], expected=[(1,)])
    assert execute(as_list).outcome == "failed_assertion"


@pytest.mark.parametrize("module", LEGITIMATE_IMPORTS)
def test_legitimate_programs_pass(isolated, module):
    uses = {
        "numpy": "assert numpy.allclose(numpy.arange(3).sum(), 3)",
        "scipy": "import scipy.special\nassert scipy.special.comb(5, 2) == 10",
        "tempfile": (
            "with tempfile.NamedTemporaryFile('w', delete=False) as h:\n    h.write('x')\n"
            "import os\nos.unlink(h.name)\nwith tempfile.TemporaryDirectory() as d:\n    open(d + '/a', 'w').write('b')"
        ),
        "hashlib": "assert hashlib.sha256(b'').hexdigest().startswith('e3b0')",
    }
    code = f"import {module}\n{uses.get(module, 'pass')}\n"
    result = execute(ExecutionJob(code=code, test="import os\nos.environ['X'] = '1'\n"))
    assert result.outcome == "passed", result.detail


def test_guard_fallback_still_scores(monkeypatch):
    """Without bubblewrap the in-process guard runs programs (and numpy) and still catches failures."""
    assert execute(
        ExecutionJob(code="import numpy as np\nx = np.ones(2)", test="assert x.sum() == 2"), "guard"
    ).passed
    assert execute(ExecutionJob(code="x = 1", test="assert x == 2"), "guard").outcome == "failed_assertion"
    forged = 'import os\nfor fd in range(3, 64):\n    try: os.write(fd, b\'{"outcome": "passed"}\')\n    except OSError: pass\nos._exit(0)\n'
    assert execute(ExecutionJob(code=forged), "guard").outcome == "runtime_error"


def test_isolation_setting_is_validated(monkeypatch):
    sandbox.isolation.cache_clear()
    monkeypatch.setenv(sandbox.SANDBOX_ENV, "nonsense")
    try:
        with pytest.raises(sandbox.SandboxError, match="LPR_SANDBOX='nonsense'"):
            sandbox.isolation()
        monkeypatch.setenv(sandbox.SANDBOX_ENV, "guard")
        sandbox.isolation.cache_clear()
        assert sandbox.isolation() == "guard"
    finally:
        sandbox.isolation.cache_clear()
