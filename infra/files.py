"""JSONL records and atomic files: the on-disk contracts of DESIGN.md.

- Records are UTF-8 JSONL, one object per line, each with a stable ``id``.
- A file written by a long run is append-only; a rerun resumes after the last complete record.
- Whole files and result directories are written under a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class RecordError(ValueError):
    """A malformed record; the message names the file and the line."""


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _lines(path: Path, handle) -> Iterator[str]:
    """The decoded lines of a binary handle; bytes that are not UTF-8 are an error naming file and line."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RecordError(
                f"{path}:{number}: not UTF-8 text ({error.reason} at column {error.start + 1})"
            ) from None


def read_jsonl(path: str | os.PathLike, *, allow_truncated_tail: bool = False) -> Iterator[dict[str, Any]]:
    """Stream the objects of a JSONL (or gzipped JSONL) file.

    Blank lines are skipped. A line that is not a JSON object raises :class:`RecordError` naming the file
    and the 1-based line number. With ``allow_truncated_tail`` a last line with no newline that does not
    parse (a record cut by a crash) is ignored instead.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with _open_binary(path) as handle:
        previous: tuple[int, str] | None = None
        for number, line in enumerate(_lines(path, handle), start=1):
            if previous is not None and (record := _parse_line(path, *previous)) is not None:
                yield record
            previous = (number, line)
        if previous is not None:
            number, line = previous
            if allow_truncated_tail and not line.endswith("\n"):
                try:
                    record = _parse_line(path, number, line)
                except RecordError:
                    return
            else:
                record = _parse_line(path, number, line)
            if record is not None:
                yield record


def _parse_line(path: Path, number: int, line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(value, dict):
        raise RecordError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
    return value


def load_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    return list(read_jsonl(path))


def record_key(record: dict[str, Any], key_fields: tuple[str, ...]) -> tuple:
    return tuple(record.get(field) for field in key_fields)


def repair_and_scan(path: str | os.PathLike, key_fields: tuple[str, ...] = ("id",)) -> set[tuple]:
    """Prepare an append-only file for resuming; return the keys of its complete records.

    A last line cut by a crash (no newline, or not parseable) is removed from the file so that new records
    start on a fresh line. A malformed line anywhere else is an error: that file was not written by us.
    """
    path = Path(path)
    if not path.exists():
        return set()
    keys: set[tuple] = set()
    good_end = 0
    with open(path, "rb") as handle:
        data = handle.read()
    offset = 0
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        is_last = number == len(lines)
        end = offset + len(raw) + (0 if is_last else 1)
        if is_last:
            # Bytes after the final newline: a truncated record (or nothing).
            break
        text = raw.decode("utf-8", errors="strict").strip() if raw.strip() else ""
        if text:
            record = _parse_line(path, number, text)
            keys.add(record_key(record, key_fields))
        good_end = end
        offset = end
    if good_end != len(data):
        with open(path, "r+b") as handle:
            handle.truncate(good_end)
    return keys


class JsonlAppender:
    """Append-only JSONL writer; each record is flushed (and fsynced) as soon as it is written."""

    def __init__(self, path: str | os.PathLike, *, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a", encoding="utf-8")
        self._fsync = fsync

    def write(self, record: dict[str, Any]) -> None:
        self.write_many([record])

    def write_many(self, records: Iterable[dict[str, Any]]) -> None:
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        if not text:
            return
        self._handle.write(text)
        self._handle.flush()
        if self._fsync:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def apply_umask(path: Path, *, directory: bool = False) -> None:
    """Give a file made by ``mkstemp``/``mkdtemp`` (mode 0600/0700) the permissions ``open`` would."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def owner() -> str:
    """Who writes: this host and process, ``<host>.<pid>`` (the host's short name, ``-`` as ``_``), fit for a
    file name that a hub id check or a scratch parser reads back."""
    host = socket.gethostname().split(".")[0].replace("-", "_").replace("@", "_") or "host"
    return f"{host}.{os.getpid()}"


def _temporary_sibling(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{owner()}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


def scratch_directory(beside: str | os.PathLike, kind: str = "tmp") -> Path:
    """A hidden directory next to ``beside``, named with our host and pid so a later run can tell whether it
    is stale: only a run on the same host, with that process gone, removes it."""
    beside = Path(beside)
    beside.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{beside.name}.{kind}-{owner()}-", dir=beside.parent))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_scratch(beside: str | os.PathLike) -> list[Path]:
    """Remove the scratch files and directories that killed runs left next to ``beside``."""
    beside = Path(beside)
    removed = []
    if not beside.parent.is_dir():
        return removed
    prefix = f".{beside.name}."
    for entry in beside.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        kind, _, rest = entry.name[len(prefix) :].partition("-")
        host, _, pid = rest.split("-", 1)[0].rpartition(".")
        if kind not in ("tmp", "old", "donor") or not pid.isdigit():
            continue
        # Another node's scratch is left alone: its pid means nothing here, and its writer may be alive.
        if host != owner().rpartition(".")[0] or _pid_alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a whole file under a temporary name, then rename it into place."""
    path = Path(path)
    temporary = _temporary_sibling(path)
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        apply_umask(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, value: Any) -> Path:
    return atomic_write_text(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RecordError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that is renamed to ``final`` when the block ends without error.

    On error the temporary directory is removed and ``final`` is left as it was. A finished directory is
    never replaced unless ``overwrite`` is set. Temporaries of killed runs are removed first. The result
    gets the permissions the umask gives (not ``mkdtemp``'s 0700), so a cluster group can read it.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final}: already exists (pass overwrite to replace it)")
    clean_stale_scratch(final)
    temporary = scratch_directory(final, "tmp")
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    apply_umask(temporary, directory=True)
    if final.exists():
        trash = scratch_directory(final, "old")
        os.replace(final, trash / final.name)
        os.replace(temporary, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(temporary, final)


class OutputBusyError(RuntimeError):
    """Another live run holds the lock of an output."""


@contextlib.contextmanager
def output_lock(
    lock_path: str | os.PathLike, target: str | os.PathLike | None = None, wait: bool = False
) -> Iterator[Path]:
    """Hold an exclusive lock on ``lock_path`` while writing ``target``; a second run is refused (``wait``: it
    waits for the first to finish instead, for a cache that two processes may build at once).

    ``flock`` locks go with the process, so a killed run never leaves a stale lock behind.
    """
    import fcntl

    lock_path = Path(lock_path)
    target = target if target is not None else lock_path
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            host, _, pid = (handle.read().strip() or "unknown.?").rpartition(".")
            raise OutputBusyError(
                f"{target}: another run is writing it (lock {lock_path}, held by pid {pid} on host {host})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(owner())
        handle.flush()
        yield lock_path
    finally:
        handle.close()
