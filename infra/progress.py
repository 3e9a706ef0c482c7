"""Progress that shows in a terminal and in a batch log alike.

On a terminal :class:`Progress` is tqdm's bar. Elsewhere (a SLURM log, ``> log 2>&1``) tqdm would either stay
silent (``disable=None``) or pile carriage returns onto one line, so a slow job and a hung one look the same;
there it prints one plain line every ``LPR_PROGRESS_SECONDS`` seconds (default 30) from a heartbeat thread,
also while a single long batch runs: items done of the total, the rate, the time left and the caller's
postfix (tokens/s, loss, ...), and a last line when it closes.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, TextIO

from tqdm.auto import tqdm

INTERVAL_VARIABLE = "LPR_PROGRESS_SECONDS"
DEFAULT_INTERVAL_S = 30.0


def log_interval() -> float:
    """Seconds between two progress lines in a batch log (``LPR_PROGRESS_SECONDS``)."""
    try:
        return max(0.05, float(os.environ.get(INTERVAL_VARIABLE, DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


def on_terminal(stream: TextIO | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class _LineWriter:
    """A file for tqdm that turns each status redraw into one plain line."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


class Progress(tqdm):
    """tqdm on a terminal; a line every :func:`log_interval` seconds in a log. ``disable=True`` silences it."""

    def __init__(self, *args: Any, **kwargs: Any):
        stream = kwargs.pop("file", None) or sys.stderr
        self._heartbeat: threading.Thread | None = None
        self._stopped = threading.Event()
        logging_mode = not on_terminal(stream) and kwargs.get("disable") is not True
        if kwargs.get("disable") is None:
            kwargs["disable"] = False  # tqdm's None means "off in a log": the very case this class is for
        if logging_mode:
            interval = log_interval()
            kwargs.update(
                file=_LineWriter(stream), mininterval=interval, maxinterval=interval, ascii=True, ncols=100
            )
        else:
            kwargs["file"] = stream
        super().__init__(*args, **kwargs)
        if logging_mode:
            self._heartbeat = threading.Thread(target=self._beat, args=(log_interval(),), daemon=True)
            self._heartbeat.start()

    def _beat(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            self.refresh()

    def close(self) -> None:
        self._stopped.set()
        super().close()


def progress(iterable: Any = None, **kwargs: Any) -> Progress:
    """``Progress(iterable, desc=..., total=..., unit=...)``: the one progress display of the project."""
    return Progress(iterable, **kwargs)
