"""Prepare the prompts for self-generation and fine-tuning: one JSONL record per example, stable ids.

    python -m self_generate.prepare --dataset yahma/alpaca-cleaned --output data/alpaca.prompts.jsonl \\
        --model meta-llama/Llama-3.1-8B-Instruct --max_length 8192 --limit 20000 --seed 42
    python -m self_generate.prepare --dataset tests/data/gsm8k/train.jsonl.gz --output gsm8k.prompts.jsonl
    python -m self_generate.prepare --dataset my.parquet --prompt_field query --response_field reply ...

Each record: ``id`` (``<name>/<row>``, stable across runs), ``prompt``, ``response`` (the dataset's own
answer, when there is one, so that standard SFT and SGR differ only in the response), ``source_index``.
NUL bytes are stripped; empty prompts are skipped and counted; with ``--max_length`` (tokens, chat-rendered
with the model's template, the response included) longer examples are skipped and counted. With
``--limit N`` a seeded sample of N examples is kept. The output is written atomically; a manifest with the
counts lands beside it (``<output>.manifest.json``).
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, parse_cli, run_cli
from infra.datasets import load_records
from infra.files import RecordError, atomic_write_jsonl
from infra.manifest import Manifest
from infra.progress import progress as progress_bar
from self_generate.sources import SCHEMAS, Example, detect_schema, extract


@dataclass
class PrepareArgs:
    dataset: str = field(metadata={"help": "hub id or local .jsonl/.jsonl.gz/.json/.parquet"})
    output: str = field(metadata={"help": "prompts JSONL to write"})
    schema: str = field(default="auto", metadata={"help": "auto, alpaca, messages, gsm8k or fields"})
    prompt_field: str | None = None
    response_field: str | None = None
    split: str = "train"
    hub_config: str | None = None
    name: str | None = field(default=None, metadata={"help": "id prefix; default: the dataset's name"})
    limit: int | None = field(default=None, metadata={"help": "keep a seeded sample of this many"})
    max_length: int | None = field(default=None, metadata={"help": "tokens, chat-rendered; needs --model"})
    model: str | None = field(default=None, metadata={"help": "tokenizer used for --max_length"})
    model_config: str | None = field(default=None, metadata={"help": "configs/models name"})
    seed: int = 42
    overwrite: bool = field(default=False, metadata={"help": "replace an existing output"})

    def __post_init__(self) -> None:
        if self.schema not in SCHEMAS:
            raise ConfigError(f"key 'schema': expected one of {', '.join(SCHEMAS)}, got {self.schema!r}")
        if self.max_length is not None and self.model is None and self.model_config is None:
            raise ConfigError("key 'max_length': counting tokens needs --model (or --model_config)")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"key 'limit': must be at least 1, got {self.limit}")


def dataset_name(source: str) -> str:
    path = Path(source)
    if path.exists():
        name = path.name
        for suffix in (".gz", ".jsonl", ".json", ".parquet"):
            name = name.removesuffix(suffix)
        return name
    return source.rstrip("/").split("/")[-1]


class LengthFilter:
    """Counts chat-rendered tokens with the model's template (the same rendering training uses)."""

    def __init__(self, model: str | None, model_config: str | None, max_length: int):
        from infra.model_spec import resolve_model_spec
        from infra.modeling import load_tokenizer

        self.spec = resolve_model_spec(model_config, model)
        self.tokenizer = load_tokenizer(model or self.spec.hub_id)
        self.max_length = max_length

    def length(self, example: Example) -> int:
        from infra.prompts import sft_messages

        messages = sft_messages(self.spec, example.prompt, example.response)
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=example.response is None
        )
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def keeps(self, example: Example) -> bool:
        return self.length(example) <= self.max_length


def prepare(args: PrepareArgs) -> dict[str, Any]:
    if Path(args.output).exists() and not args.overwrite:
        raise ConfigError(f"{args.output}: already exists (pass --overwrite to replace it)")
    try:
        records = load_records(args.dataset, hub_config=args.hub_config, split=args.split)
    except RecordError as error:
        raise ConfigError(str(error)) from None
    if not records:
        raise ConfigError(f"{args.dataset}: no records")
    schema = args.schema if args.schema != "auto" else detect_schema(records[0], args.prompt_field)
    name = args.name or dataset_name(args.dataset)
    order = list(range(len(records)))
    if args.limit is not None:
        random.Random(args.seed).shuffle(order)
    length_filter = LengthFilter(args.model, args.model_config, args.max_length) if args.max_length else None
    kept: list[Example] = []
    counts = {"records": len(records), "examined": 0, "empty_prompt": 0, "no_response": 0, "too_long": 0}
    bar = progress_bar(order, desc="prepare", unit="ex")
    for index in bar:
        if args.limit is not None and len(kept) >= args.limit:
            break
        counts["examined"] += 1
        example = extract(
            records[index],
            index,
            schema,
            f"{args.dataset}: record {index + 1}",
            args.prompt_field,
            args.response_field,
        )
        if not example.prompt.strip():
            counts["empty_prompt"] += 1
            continue
        if example.response is None and schema != "fields":
            counts["no_response"] += 1
            continue
        if length_filter is not None and not length_filter.keeps(example):
            counts["too_long"] += 1
            continue
        kept.append(example)
    bar.close()
    if not kept:
        raise ConfigError(f"{args.dataset}: no example left after filtering ({counts})")
    kept.sort(key=lambda example: example.index)
    rows = []
    for example in kept:
        row: dict[str, Any] = {"id": f"{name}/{example.index}", "prompt": example.prompt}
        if example.response is not None:
            row["response"] = example.response
        row["source_index"] = example.index
        if example.source_id is not None:
            row["source_id"] = example.source_id
        rows.append(row)
    counts["kept"] = len(rows)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    manifest = Manifest("self_generate.prepare", config=args, seeds={"seed": args.seed})
    manifest.add_input("dataset", args.dataset)
    manifest.extra["schema"] = schema
    manifest.extra["counts"] = counts
    atomic_write_jsonl(output, rows)
    manifest.write_beside(output)
    return counts


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(PrepareArgs, argv, doc=__doc__)
    counts: dict[str, Any] = {}
    code = run_cli(lambda a: counts.update(prepare(a)), args)
    if code:
        return code
    print(
        f"[prepare] kept {counts['kept']} of {counts['examined']} examined ({counts['records']} records); "
        f"skipped: {counts['too_long']} too long, {counts['empty_prompt']} empty, "
        f"{counts['no_response']} without a response -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
