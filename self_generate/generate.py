"""Self-Generated Responses: the unpruned model answers each prepared prompt under its chat template.

    python -m self_generate.generate --model meta-llama/Llama-3.1-8B-Instruct \\
        --prompts data/alpaca.prompts.jsonl --output data/alpaca.sgr.jsonl --backend vllm
    python -m self_generate.generate --model .cache/models/tiny-llama --prompts p.jsonl --output o.jsonl \\
        --n 8 --max_new_tokens 256          # GSM8K upper-bound experiment: 8 samples per prompt

Paper settings by default: system turn "You are a helpful assistant." (none where the template has no
system role), temperature 0.9, top-p 0.95, up to 8192 new tokens within a context of 8192 (prompt +
response, the original's ``max_model_len``); prompts of 8192 tokens or more are skipped and counted. The model
config's ``stop_tokens`` end an answer, and its ``self_generation_stop_tokens`` too (Mistral: ``[INST]``, as
the original's self-generation stopped). The output is append-only: a rerun continues after the last
complete record, and each completion is seeded by (seed, id, sample), so a resumed run writes the same
records as an uninterrupted one; resuming with another model or decoding setting is refused
(``--overwrite`` starts afresh; see :mod:`infra.generation_loop`). Each record: ``id``, ``sample``, ``prompt``, ``response``,
``finish_reason``, ``num_tokens``. ``<output>.manifest.json`` marks a finished run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from infra import generation_loop as loop
from infra.config import ConfigError, parse_cli, run_cli
from infra.files import RecordError, load_jsonl
from infra.generation import BACKENDS, BackendConfig, SamplingConfig, resolve_backend
from infra.manifest import Manifest


@dataclass
class GenerateArgs:
    model: str = field(metadata={"help": "the unpruned model: directory or hub id"})
    prompts: str = field(metadata={"help": "JSONL from self_generate.prepare (id, prompt)"})
    output: str = field(metadata={"help": "JSONL of responses (appended; resumable)"})
    model_config: str | None = None
    n: int = 1
    max_new_tokens: int = 8192
    max_context: int = field(
        default=8192,
        metadata={
            "help": "prompt + response, as the original's vLLM max_model_len (also capped by the model "
            "config's max_context and the checkpoint's positions); longer prompts are skipped and counted"
        },
    )
    temperature: float = 0.9
    top_p: float = 0.95
    top_k: int = 0
    backend: str = field(default="auto", metadata={"help": "auto (vllm on a GPU node, else hf), hf or vllm"})
    batch_size: int = 8
    dtype: str = "auto"
    device: str = "auto"
    tensor_parallel_size: int = 1
    limit: int | None = None
    seed: int = 0
    overwrite: bool = field(default=False, metadata={"help": "regenerate instead of resuming"})

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"key 'backend': expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.n < 1:
            raise ConfigError(f"key 'n': must be at least 1, got {self.n}")


def read_prompts(path: str, limit: int | None = None) -> list[dict]:
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such prompts file")
    try:
        records = load_jsonl(path)
    except RecordError as error:
        raise ConfigError(str(error)) from None
    if not records:
        raise ConfigError(f"{path}: no prompts (empty file)")
    seen = set()
    for number, record in enumerate(records, start=1):
        for key in ("id", "prompt"):
            if key not in record:
                raise ConfigError(f"{path}:{number}: record has no {key!r} field")
        if record["id"] in seen:
            raise ConfigError(f"{path}:{number}: duplicate id {record['id']!r}")
        seen.add(record["id"])
    return records[:limit] if limit is not None else records


def generate(args: GenerateArgs) -> dict:
    from infra.model_spec import resolve_model_spec
    from infra.modeling import check_causal_lm, load_tokenizer, model_context_limit
    from infra.prompts import sft_messages

    records_in = read_prompts(args.prompts, args.limit)
    backend_name = resolve_backend(args.backend)
    spec = resolve_model_spec(args.model_config, args.model)
    check_causal_lm(args.model)
    context = min(
        limit for limit in (args.max_context, spec.max_context, model_context_limit(args.model)) if limit
    )
    tokenizer = load_tokenizer(args.model)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    manifest = Manifest("self_generate.generate", config=args, seeds={"seed": args.seed})
    manifest.add_input("model", args.model)
    manifest.add_input("prompts", args.prompts)

    rendered, too_long = [], []
    for record in records_in:
        text = tokenizer.apply_chat_template(
            sft_messages(spec, record["prompt"]), tokenize=False, add_generation_prompt=True
        )
        length = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        if length >= context:
            too_long.append(record["id"])
        else:
            rendered.append((record, text))

    sampling = SamplingConfig(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        n=args.n,
        stop_strings=list(spec.stop_strings),
        max_context=context,
    )
    stop_tokens = list(dict.fromkeys([*spec.stop_tokens, *spec.self_generation_stop_tokens]))
    if too_long:
        print(f"[generate] skipping {len(too_long)} prompts of {context} tokens or more (the context)")
    signature = loop.run_signature(
        model=args.model,
        adapter=None,
        sampling=sampling,
        seed=args.seed,
        backend=backend_name,
        model_config=spec.name,
        prompt=loop.text_digest(repr(spec.prompt("sft")), str(getattr(tokenizer, "chat_template", ""))),
    )
    config = BackendConfig(
        backend_name,
        args.batch_size,
        args.dtype,
        args.device,
        args.tensor_parallel_size,
        max_model_len=context,
    )
    records, stats = loop.generate_resumable(
        loop.lazy_backend(args.model, config, stop_tokens=stop_tokens),
        [
            loop.GenerationRequest(record["id"], text, {"prompt": record["prompt"]})
            for record, text in rendered
        ],
        sampling,
        args.seed,
        output,
        signature=signature,
        overwrite=args.overwrite,
        chunk=loop.loop_chunk(config, max(1, args.batch_size // args.n)),
        desc="self-generate",
        record_latency=False,
    )
    counts = {
        "prompts": len(records_in),
        "too_long": len(too_long),
        "already_done": stats.already_done,
        "generated_tokens": stats.generated_tokens,
        "seconds": round(stats.seconds, 2),
        "tokens_per_s": round(stats.tokens_per_s, 2) if stats.tokens_per_s else None,
        "records": len(records),
    }
    manifest.extra["counts"] = counts
    manifest.extra["skipped_too_long"] = too_long
    manifest.write_beside(output)
    return counts


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(GenerateArgs, argv, doc=__doc__, gpu_stage=True)
    counts: dict = {}
    code = run_cli(lambda a: counts.update(generate(a)), args)
    if code:
        return code
    print(
        f"[generate] {counts['records']} records in {args.output} ({counts['too_long']} prompts too long; "
        f"{counts['generated_tokens']} new tokens in {counts['seconds']} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
