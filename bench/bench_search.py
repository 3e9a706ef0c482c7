"""The iterative search on the real SmolLM2-135M-Instruct (30 layers), both ways, side by side in one run:

    python bench/bench_search.py --repeats 1 --items 1 --max_new_tokens 8     # about 22 minutes on 2 cores
    python bench/bench_search.py --repeats 2 --engines --block 2 --skip_searches   # engines only
    python bench/bench_search.py             # the defaults: 2 repeats of 4 items, 16 tokens (many times longer)

1. one search per pruning amount (2 layers, 10%, 15% and 25%: 2, 3, 5 and 8 steps, each from scratch, as the
   grid planned it before) against one 8-step search whose order every amount takes a prefix of; candidates
   made in memory (transformers), the same scorer and seed; the layers each way chooses compared;
2. with ``--engines``: a block of candidates scored inside one vLLM engine (vLLM's CPU build here) against
   the same candidates each given an engine of its own (what a SLURM array task per candidate did), interleaved
   and repeated.
Prints each timing and the ratios; the layers must agree (the run fails otherwise).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

AMOUNTS = {"2layers": 2, "10pct": 3, "15pct": 5, "25pct": 8}  # of SmolLM2's 30 layers (rounded as the plan)


def search_command(model: str, output: Path, steps: int, args: argparse.Namespace, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "layer_pruner.search", "--model", model, "--model_config", "smollm2-135m-instruct",
        "--steps", str(steps), "--output_dir", str(output), "--tasks", "toy_brackets,toy_copy",
        "--n_items", str(args.items), "--max_new_tokens", str(args.max_new_tokens), "--gen_batch_size", "16",
        "--dtype", "float32", "--seed", "0", *extra,
    ]  # fmt: skip


def run(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def order(directory: Path) -> list[int]:
    from layer_pruner.iterative import read_order

    return read_order(directory)["removed"]


def searches(model: str, work: Path, args: argparse.Namespace) -> dict[str, object]:
    """Per-amount searches against one shared search: seconds and the layers each chose."""
    apart_seconds, shared_seconds = [], []
    for repeat in range(args.repeats):
        for way in ("apart", "shared") if repeat % 2 == 0 else ("shared", "apart"):
            root = work / f"{way}{repeat}"
            shutil.rmtree(root, ignore_errors=True)
            if way == "apart":
                seconds = sum(
                    run(search_command(model, root / amount, steps, args, "--backend", "hf"))
                    for amount, steps in AMOUNTS.items()
                )
                apart_seconds.append(seconds)
                layers_apart = {amount: order(root / amount) for amount in AMOUNTS}
            else:
                shared_seconds.append(run(search_command(model, root / "shared", 8, args, "--backend", "hf")))
                full = order(root / "shared")
                layers_shared = {amount: full[:steps] for amount, steps in AMOUNTS.items()}
    return {
        "apart_s": apart_seconds,
        "shared_s": shared_seconds,
        "apart": layers_apart,
        "shared": layers_shared,
    }


def engines(model: str, work: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """A block of ``--block`` candidates in one vLLM engine against one engine per candidate (step 1)."""
    block, single = [], []
    for repeat in range(args.repeats):
        for way in ("block", "single") if repeat % 2 == 0 else ("single", "block"):
            root = work / f"engine-{way}{repeat}"
            shutil.rmtree(root, ignore_errors=True)
            base = search_command(model, root, 1, args, "--backend", "vllm")
            run([*base, "--baseline_only"])
            if way == "block":
                block.append(run([*base, "--block_size", str(args.block), "--candidate_block", "0"]))
            else:
                single.append(
                    sum(
                        run([*base, "--block_size", "1", "--candidate_block", str(i)])
                        for i in range(args.block)
                    )
                )
    return {"block_s": block, "single_s": single}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=16)
    parser.add_argument(
        "--engines", action="store_true", help="also vLLM: one engine per candidate vs a block"
    )
    parser.add_argument("--block", type=int, default=4, help="candidates of the engine comparison")
    parser.add_argument(
        "--skip_searches", action="store_true", help="only the engine comparison (with --engines)"
    )
    args = parser.parse_args()
    if args.skip_searches and not args.engines:
        parser.error("--skip_searches leaves nothing to run without --engines")
    from infra.study_models.real_model import ensure_real_model

    model = str(ensure_real_model())
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        if not args.skip_searches:
            report_searches(searches(model, work, args))
        if args.engines:
            report_engines(engines(model, work, args), args)


def report_searches(result: dict[str, object]) -> None:
    mean_apart, mean_shared = statistics.mean(result["apart_s"]), statistics.mean(result["shared_s"])
    print(f"one search per amount: {', '.join(f'{s:.0f}' for s in result['apart_s'])} s")
    print(f"one shared search:     {', '.join(f'{s:.0f}' for s in result['shared_s'])} s")
    print(f"ratio apart / shared: {mean_apart / mean_shared:.2f}")
    for amount in AMOUNTS:
        print(f"  {amount}: apart {result['apart'][amount]}, shared prefix {result['shared'][amount]}")
    if result["apart"] != result["shared"]:
        raise SystemExit("the amounts' layers differ between the two ways")
    print("the layers of every amount are the shared search's prefix")


def report_engines(timing: dict[str, list[float]], args: argparse.Namespace) -> None:
    print(f"{args.block} candidates in one engine: {', '.join(f'{s:.0f}' for s in timing['block_s'])} s")
    print(f"{args.block} candidates, an engine each: {', '.join(f'{s:.0f}' for s in timing['single_s'])} s")
    ratio = statistics.mean(timing["single_s"]) / statistics.mean(timing["block_s"])
    print(f"ratio engine per candidate / block: {ratio:.2f}")


if __name__ == "__main__":
    main()
