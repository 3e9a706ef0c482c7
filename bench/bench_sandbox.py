"""Code-execution benchmark (issue: eval). Runs the MBPP+ canonical solutions against their base assertions.

    python bench/bench_sandbox.py [--data ../shared/data/mbppplus/MbppPlus.jsonl] [--workers 2]

Reports items/s through the sandbox using all workers, items/s with one worker, and the per-item overhead of
the sandbox over a bare in-process ``exec`` of the same program and tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.scorers import CodeOptions, score_code  # noqa: E402
from eval.tasks import load_task  # noqa: E402


def bare_exec(item) -> bool:
    namespace: dict = {"__name__": "__main__"}
    try:
        exec(item.fields["canonical_solution"], namespace)
        exec("\n".join(item.fields["test_imports"]) + "\n" + item.fields["assertion"], namespace)
        return True
    except Exception:  # noqa: BLE001 - a failing item is still timed
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/mbppplus/MbppPlus.jsonl")
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    items = load_task("mbpp", data=args.data)
    texts = [f"```python\n{item.fields['canonical_solution']}```" for item in items]

    start = time.perf_counter()
    passed_bare = sum(bare_exec(item) for item in items)
    bare_s = time.perf_counter() - start

    timings = {}
    for workers in sorted({1, args.workers}):
        start = time.perf_counter()
        results = score_code(items, texts, CodeOptions(workers=workers), progress=False)
        timings[workers] = time.perf_counter() - start
        passed = sum(r["outcome"] == "passed" for r in results)

    n = len(items)
    report = {
        "items": n,
        "passed_sandbox": passed,
        "passed_bare_exec": passed_bare,
        "bare_exec_ms_per_item": 1000 * bare_s / n,
        "sandbox_ms_per_item_1_worker": 1000 * timings[1] / n,
        "sandbox_overhead_ms_per_item": 1000 * (timings[1] - bare_s) / n,
        f"items_per_s_{args.workers}_workers": n / timings[args.workers],
        "items_per_s_1_worker": n / timings[1],
        "parallel_speedup": timings[1] / timings[args.workers],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
