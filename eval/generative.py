"""Generative benchmarks: GSM8K, HumanEval+, MBPP+, XSUM (paper settings by default).

    python -m eval.generative --model meta-llama/Llama-3.1-8B-Instruct --tasks gsm8k,humaneval,mbpp,xsum \\
        --output_dir outputs/llama/base/generative --backend vllm
    python -m eval.generative --model outputs/llama/bi-25 --adapter outputs/llama/bi-25-sgr/adapter ...
    python -m eval.generative --responses old/gsm8k.jsonl --tasks gsm8k --model_config llama-3.1-8b-instruct \\
        --output_dir rescored          # rescore saved responses without loading a model

Writes ``<task>.json`` (task, score, n, generated tokens, tokens/s) and ``<task>.jsonl`` (one record per item:
id, prompt, response, finish reason, tokens, latency, score and, for code, outcome) into --output_dir, plus
manifest.json. Generations go to ``<task>.generations.jsonl`` as they finish, so a rerun resumes; beside
it ``<task>.generations.jsonl.meta.json`` says what produced them, and a rerun with another model, adapter,
prompt or decoding setting is refused (``--overwrite`` regenerates). A directory is locked while a run
writes it. Code runs in the OS sandbox of :mod:`eval.sandbox`; the manifest records its isolation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from eval.scorers import CodeOptions, score_responses
from eval.scoring import item_records, parse_data_overrides, prepare, summarize, task_sampling
from eval.tasks import CODE_KINDS, load_task, registry, task_kind
from infra.config import ConfigError, parse_cli, run_cli
from infra.files import atomic_write_json, atomic_write_jsonl, load_jsonl, output_lock, read_json
from infra.generation import BACKENDS, BackendConfig, resolve_backend
from infra.generation_loop import (
    GenerationRequest,
    generate_resumable,
    lazy_backend,
    loop_chunk,
    run_signature,
    text_digest,
)
from infra.manifest import Manifest
from infra.model_spec import ModelSpec, resolve_model_spec
from infra.resume import differing, mismatch_message


@dataclass
class GenerativeArgs:
    output_dir: str
    model: str | None = field(default=None, metadata={"help": "checkpoint directory or hub id"})
    adapter: str | None = None
    model_config: str | None = field(
        default=None, metadata={"help": "configs/models name; found from --model"}
    )
    tasks: list[str] = field(
        default_factory=lambda: list(registry().eval_tasks),
        metadata={"help": "registered tasks (configs/tasks/generative.yaml); toy tasks only when named"},
    )
    data: list[str] = field(default_factory=list, metadata={"help": "task=file (JSONL, JSONL.gz, parquet)"})
    responses: str | None = field(default=None, metadata={"help": "JSONL of id+response to rescore"})
    limit: int | None = field(default=None, metadata={"help": "keep the first N of the selected items"})
    max_items: int | None = field(default=None, metadata={"help": "items sampled per task (default 1,000)"})
    backend: str = field(default="auto", metadata={"help": "auto (vllm on a GPU node, else hf), hf or vllm"})
    batch_size: int = 8
    dtype: str = "auto"
    device: str = "auto"
    tensor_parallel_size: int = 1
    temperature: float = 0.9
    top_p: float = 1.0
    top_k: int = 50
    max_new_tokens: int = 8192
    max_context: int | None = field(
        default=None,
        metadata={
            "help": "prompt + generation (default: the smallest of the task's context, the model config's "
            "max_context and the model's max_position_embeddings); a prompt that does not fit is answered "
            "empty with finish reason length"
        },
    )
    seed: int = 0
    mbpp_mode: str = "base"
    code_timeout_s: float | None = field(default=None, metadata={"help": "per program (default 30 s)"})
    prompt_variant: str = field(default="as_run", metadata={"help": "as_run or uniform (configs/models)"})
    code_workers: int | None = None
    overwrite: bool = field(default=False, metadata={"help": "regenerate and replace existing results"})

    def __post_init__(self) -> None:
        for task in self.tasks:
            registry().spec(task)  # an unknown task is a ConfigError naming the known ones
        if self.model is None and self.responses is None:
            raise ConfigError("give --model (to generate) or --responses (to rescore)")
        if self.backend not in BACKENDS:
            raise ConfigError(f"key 'backend': expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.mbpp_mode not in ("base", "plus"):
            raise ConfigError(f"key 'mbpp_mode': expected base or plus, got {self.mbpp_mode!r}")


def _load_responses(path: str) -> dict[str, str]:
    responses = {}
    for number, record in enumerate(load_jsonl(path), start=1):
        if "id" not in record or "response" not in record:
            raise ConfigError(f"{path}:{number}: a response record needs 'id' and 'response'")
        if record.get("sample", 0) == 0:
            responses[str(record["id"])] = record["response"]
    return responses


def run(args: GenerativeArgs) -> dict[str, dict]:
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with output_lock(output_dir / ".lock", output_dir):
        return _run(args, output_dir)


def _run(args: GenerativeArgs, output_dir: Path) -> dict[str, dict]:
    from eval.sandbox import isolation

    manifest = Manifest("eval.generative", config=args, seeds={"seed": args.seed})
    spec: ModelSpec = resolve_model_spec(args.model_config, args.model, args.prompt_variant)
    backend_name = resolve_backend(args.backend)
    overrides = parse_data_overrides(args.data)
    code_options = CodeOptions(
        mbpp_mode=args.mbpp_mode,
        timeout_s=args.code_timeout_s or registry().code_timeout_s,
        workers=args.code_workers,
    )
    sampling = task_sampling(
        spec,
        "eval",
        model=args.model if args.responses is None else None,
        max_context=args.max_context,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
    )
    tokenizer = None
    config = BackendConfig(
        backend_name, args.batch_size, args.dtype, args.device, args.tensor_parallel_size,
        max_model_len=sampling.max_context,
    )  # fmt: skip
    backend = lazy_backend(args.model, config, adapter=args.adapter, stop_tokens=spec.stop_tokens)
    if args.responses is None:
        from infra.modeling import check_causal_lm, load_tokenizer

        check_causal_lm(args.model)
        tokenizer = load_tokenizer(
            args.adapter
            if args.adapter and (Path(args.adapter) / "tokenizer_config.json").exists()
            else args.model
        )
        manifest.add_input("model", args.model)
        if args.adapter:
            manifest.add_input("adapter", args.adapter)
    else:
        given = _load_responses(args.responses)
        manifest.add_input("responses", args.responses)
    if any(task_kind(task) in CODE_KINDS for task in args.tasks):
        manifest.extra["code_sandbox"] = isolation()
    summaries = {}
    for task in args.tasks:
        items = load_task(task, data=overrides.get(task), max_items=args.max_items, limit=args.limit)
        manifest.add_input(task, overrides.get(task, "hub"))
        prompt_spec = spec.prompt(task)
        if args.responses is not None:
            missing = [item.id for item in items if item.id not in given]
            if missing:
                raise ConfigError(
                    f"{args.responses}: no response for {len(missing)} {task} items (first: {missing[0]})"
                )
            signature = {"responses": str(Path(args.responses).resolve()), "model_config": spec.name}
            _check_results(output_dir / f"{task}.json", signature, args.overwrite)
            responses = [given[item.id] for item in items]
            scores = score_responses(task, items, responses, code_options)
            records = [{"id": item.id, "response": r, **s} for item, r, s in zip(items, responses, scores)]
            elapsed = None
        else:
            signature = run_signature(
                model=args.model,
                adapter=args.adapter,
                sampling=sampling,
                seed=args.seed,
                backend=backend_name,
                model_config=spec.name,
                prompt=text_digest(repr(prompt_spec), str(getattr(tokenizer, "chat_template", ""))),
            )
            _check_results(output_dir / f"{task}.json", signature, args.overwrite)
            task_run = prepare(spec, tokenizer, task, items)

            requests = [GenerationRequest(item.id, prompt) for item, prompt in zip(items, task_run.prompts)]
            generations, stats = generate_resumable(
                backend,
                requests,
                sampling,
                args.seed,
                output_dir / f"{task}.generations.jsonl",
                signature=signature,
                overwrite=args.overwrite,
                chunk=loop_chunk(config),
                desc=f"generate {task}",
            )
            generations = [{k: v for k, v in g.items() if k != "id"} for g in generations]
            elapsed = stats.seconds or None
            scores = score_responses(task, items, [g["response"] for g in generations], code_options)
            records = item_records(task_run, generations, scores)
        summary = summarize(task, records, elapsed)
        summary.update(
            {"model": args.model, "adapter": args.adapter, "model_config": spec.name, "signature": signature}
        )
        atomic_write_jsonl(output_dir / f"{task}.jsonl", records)
        atomic_write_json(output_dir / f"{task}.json", summary)
        summaries[task] = summary
        print(f"[eval] {task}: score {summary['score']:.4f} over {summary['n']} items")
    manifest.write(output_dir)
    return summaries


def _check_results(path: Path, signature: dict, overwrite: bool) -> None:
    """Finished results of another model or setting are never replaced without --overwrite."""
    if overwrite or not path.exists():
        return
    old = read_json(path).get("signature") or {}
    if differing(old, signature):
        raise ConfigError(
            mismatch_message(
                path, old, signature, "pass --overwrite to replace them, or choose another --output_dir"
            )
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(GenerativeArgs, argv, doc=__doc__, gpu_stage=True)
    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
