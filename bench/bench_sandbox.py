"""Code-execution benchmark: sandbox overhead per program, bubblewrap isolation against the in-process guard.

    python bench/bench_sandbox.py [--data tests/data/mbppplus/MbppPlus.jsonl.gz] [--items 100] [--repeats 3]

Runs MBPP+ canonical solutions against their base assertions, one worker, both modes interleaved in each
repeat (bwrap, guard, bwrap, ...), and a bare in-process ``exec`` of the same programs. Reports the median
milliseconds per program of each mode, the overhead over bare exec, and the bwrap/guard ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.sandbox import execute, isolation  # noqa: E402
from eval.scorers import CodeOptions, code_job  # noqa: E402
from eval.tasks import load_task  # noqa: E402


def bare_exec(item) -> bool:
    namespace: dict = {"__name__": "__main__"}
    try:
        exec(item.fields["canonical_solution"], namespace)
        exec("\n".join(item.fields["test_imports"]) + "\n" + "\n".join(item.fields["test_list"]), namespace)
        return True
    except Exception:  # noqa: BLE001 - a failing item is still timed
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[1] / "tests/data/mbppplus/MbppPlus.jsonl.gz")
    )
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if isolation() != "bwrap":
        sys.exit("bubblewrap is not usable here: nothing to compare")
    items = load_task("mbpp", data=args.data)[: args.items]
    jobs = [code_job(item, item.fields["canonical_solution"], CodeOptions()) for item in items]
    timings: dict[str, list[float]] = {"bwrap": [], "guard": [], "bare": []}
    passed: dict[str, int] = {}
    for _ in range(args.repeats):
        for mode in ("bwrap", "guard"):
            start = time.perf_counter()
            passed[mode] = sum(execute(job, mode).passed for job in jobs)
            timings[mode].append((time.perf_counter() - start) / len(jobs))
        start = time.perf_counter()
        passed["bare"] = sum(bare_exec(item) for item in items)
        timings["bare"].append((time.perf_counter() - start) / len(jobs))
    median_ms = {mode: 1000 * statistics.median(values) for mode, values in timings.items()}
    report = {
        "items": len(jobs),
        "repeats": args.repeats,
        "passed": passed,
        "ms_per_program": {mode: round(value, 1) for mode, value in median_ms.items()},
        "spread_ms": {
            mode: [round(1000 * min(v), 1), round(1000 * max(v), 1)] for mode, v in timings.items()
        },
        "overhead_ms_over_bare": {m: round(median_ms[m] - median_ms["bare"], 1) for m in ("bwrap", "guard")},
        "bwrap_over_guard": round(median_ms["bwrap"] / median_ms["guard"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
