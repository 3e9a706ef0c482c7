"""Balancing the test workers: the longest tests first, spread so that each worker starts with an equal share.

pytest-xdist's work-stealing scheduler hands each of N idle workers a contiguous slice of the collection (the
first ``len // N``, then an equal share of the rest) and lets a worker that runs dry take half of another's
queue. A slice that begins with several of the suite's longest tests keeps its worker busy long after the
others finished, whatever is stolen afterwards (a running test cannot be). So the longest tests, by the
durations of a measured run (``tests/durations.json``), are dealt out longest first to the worker with the least
work so far, and each worker's slice is its long tests followed by its share of the others in their collected
order. Tests the file does not know count as short. Refresh the file after the suite changes:

    LPR_RECORD_DURATIONS=tests/durations.json bash scripts/run_tests.sh
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DURATIONS = Path(__file__).resolve().parent.parent / "durations.json"
LONG_SECONDS = 20.0  # a test at least this long is placed; the rest keep their order


def known_durations(path: Path = DURATIONS) -> dict[str, float]:
    return json.loads(path.read_text()) if path.is_file() else {}


def balanced_order(items: list[Any], workers: int, durations: dict[str, float]) -> list[Any]:
    """``items`` (anything with a ``nodeid``) reordered for ``workers`` workers as described above."""
    long = sorted(
        (item for item in items if durations.get(item.nodeid, 0.0) >= LONG_SECONDS),
        key=lambda item: -durations[item.nodeid],
    )
    placed = {id(item) for item in long}
    short = [item for item in items if id(item) not in placed]
    if workers <= 1:
        return long + short
    bins: list[list[Any]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for item in long:  # longest first onto the least loaded worker
        index = loads.index(min(loads))
        bins[index].append(item)
        loads[index] += durations[item.nodeid]
    # The slices the scheduler cuts: the first len // workers items, then an equal share of the rest.
    sizes, remaining = [], len(items)
    for left in range(workers, 0, -1):
        sizes.append(remaining // left)
        remaining -= sizes[-1]
    ordered: list[Any] = []
    for size, mine in zip(sizes, bins):
        take = max(size - len(mine), 0)
        ordered += mine + short[:take]
        short = short[take:]
    return ordered + short


def record(durations: dict[str, float], path: Path) -> None:
    """Write the measured durations (setup, call and teardown together), rounded, sorted longest first."""
    ordered = dict(sorted(((k, round(v, 1)) for k, v in durations.items()), key=lambda kv: -kv[1]))
    path.write_text(json.dumps(ordered, indent=1) + "\n")
