"""Pruner benchmarks (issue: layer_pruner). CPU, random Llama-architecture models.

    python bench/bench_pruner.py                 # all parts
    python bench/bench_pruner.py --parts candidate,forward
    python bench/bench_pruner.py --parts memory --sizes 2,8   # GB models; needs ~3x the size in free disk

1. candidate: time to make a pruning candidate ready, in memory (drop blocks) vs mergekit merge to disk +
   reload, on a 24-layer model with hidden size 1024.
2. memory: peak RSS (and peak anonymous RSS) of materializing models of ~2 GB and ~8 GB (float32), stored in
   500 MB shards as hub checkpoints are, with 500 MB output shards, each in a fresh process.
3. forward: forward-pass time of the pruned vs the unpruned model on the same input (ideal: layer ratio).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from infra.modeling import load_model  # noqa: E402
from infra.study_models.tiny_models import TinyModelSpec, build_tiny_model  # noqa: E402
from layer_pruner.inmemory import layers_removed  # noqa: E402
from layer_pruner.materialize import materialize  # noqa: E402
from layer_pruner.plan import PrunePlan  # noqa: E402


def build(path: Path, layers: int, hidden: int, max_shard_size: str | None = None) -> None:
    spec = TinyModelSpec(
        arch="llama",
        num_layers=layers,
        hidden_size=hidden,
        intermediate_size=int(hidden * 3.5),
        num_heads=max(1, hidden // 64),
        num_kv_heads=max(1, hidden // 256),
    )
    if max_shard_size is None:
        model, _ = build_tiny_model(spec, path)
    else:  # stored in shards, like checkpoints on the hub
        model, tokenizer = build_tiny_model(spec)
        model.save_pretrained(path, max_shard_size=max_shard_size)
        tokenizer.save_pretrained(path)
    del model


def best_of(function, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_candidate(root: Path) -> dict:
    path = root / "m24"
    build(path, 24, 1024)
    model = load_model(str(path), dtype="float32", device="cpu")
    removed = [10, 17]

    def in_memory():
        with layers_removed(model, removed):
            pass

    def merge_and_reload():
        out = root / f"cand-{time.perf_counter_ns()}"
        materialize(PrunePlan(str(path), "layers", 24, removed, n=2), out, dtype="float32")
        load_model(str(out), dtype="float32", device="cpu")

    t_memory = best_of(in_memory, 20)
    t_merge = best_of(merge_and_reload, 3)
    return {"in_memory_s": t_memory, "merge_reload_s": t_merge, "speedup": t_merge / t_memory}


def bench_forward(root: Path) -> dict:
    path = root / "m24"
    if not path.exists():
        build(path, 24, 1024)
    model = load_model(str(path), dtype="float32", device="cpu")
    batch = torch.randint(10, 500, (4, 256))
    with torch.no_grad():
        full = best_of(lambda: model(batch), 5)
        with layers_removed(model, list(range(18, 24))):
            pruned = best_of(lambda: model(batch), 5)
    return {"unpruned_s": full, "pruned_s": pruned, "time_ratio": pruned / full, "layer_ratio": 18 / 24}


CHILD = """
import sys, json, threading, time
sys.path.insert(0, {repo!r})
from layer_pruner.materialize import materialize
from layer_pruner.plan import PrunePlan

peak_anon = [0]
def sample():  # anonymous memory (RssAnon): what the process holds, without mapped file pages
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                peak_anon[0] = max(peak_anon[0], int(line.split()[1]))
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
plan = PrunePlan({path!r}, "layers", {layers}, {removed}, n={n})
materialize(plan, {out!r}, dtype="float32", out_shard_size=500_000_000)
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork+exec, so it would report the parent's peak
# (which held the model it had just built).
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{
    "peak_rss_mb": hwm / 1024,
    "peak_anon_mb": peak_anon[0] / 1024,
}}))
"""


def bench_memory(root: Path, sizes_gb: list[float]) -> dict:
    results = {}
    for size in sizes_gb:
        hidden, layers = 2048, 0
        per_layer = 4 * (4 * hidden * hidden + 3 * hidden * int(hidden * 3.5))  # float32 bytes, roughly
        layers = max(4, int(size * 1e9 / per_layer))
        path = root / f"m{size:g}gb"
        build(path, layers, hidden, max_shard_size="500MB")
        removed = list(range(layers - layers // 4, layers))
        code = CHILD.format(
            repo=str(Path(__file__).resolve().parent.parent),
            path=str(path),
            layers=layers,
            removed=removed,
            n=len(removed),
            out=str(root / f"pruned-{size:g}gb"),
        )
        output = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        stored = sum(p.stat().st_size for p in path.glob("*.safetensors")) / 1e9
        results[f"{size:g}GB"] = {
            "model_gb": round(stored, 2),
            "layers": layers,
            **json.loads(output.strip().splitlines()[-1]),
        }
    if len(results) >= 2:
        for key in ("peak_rss_mb", "peak_anon_mb"):
            peaks = [r[key] for r in results.values() if isinstance(r, dict)]
            results[f"{key}_ratio_largest_to_smallest"] = peaks[-1] / peaks[0]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="candidate,forward,memory")
    parser.add_argument("--sizes", default="2,8")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        report = {}
        parts = args.parts.split(",")
        if "candidate" in parts:
            report["candidate"] = bench_candidate(root)
            print(json.dumps({"candidate": report["candidate"]}), flush=True)
        if "forward" in parts:
            report["forward"] = bench_forward(root)
            print(json.dumps({"forward": report["forward"]}), flush=True)
        if "memory" in parts:
            report["memory"] = bench_memory(root, [float(s) for s in args.sizes.split(",")])
            print(json.dumps({"memory": report["memory"]}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
