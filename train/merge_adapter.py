"""Merge a LoRA / QLoRA adapter into its (pruned) base as a standalone checkpoint.

    python -m train.merge_adapter --base outputs/llama/bi-25 --adapter outputs/llama/bi-25-sgr/adapter \\
        --output_dir outputs/llama/bi-25-sgr/merged

The base is loaded unquantized (``--dtype``, default the base's own), the adapter applied and merged with
peft's ``merge_and_unload``. The result is a plain Hugging Face directory with the tokenizer, the base's
``plan.json`` and mergekit YAML, a ``lineage.json`` (base, adapter) and a manifest; it is written under a
temporary name and renamed into place when complete.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from infra.config import ConfigError, parse_cli, report_error
from infra.files import atomic_directory, atomic_write_json
from infra.manifest import Manifest
from infra.modeling import ModelLoadError, count_parameters, decoder_layers, is_adapter_dir

CARRIED_FILES = ("plan.json", "mergekit_config.yaml")


@dataclass
class MergeArgs:
    adapter: str = field(metadata={"help": "adapter directory (adapter_config.json)"})
    output_dir: str
    base: str | None = field(default=None, metadata={"help": "default: the adapter's base model"})
    dtype: str = field(default="auto", metadata={"help": "auto (the base's), float32, bfloat16, float16"})
    overwrite: bool = False


def lineage(base: str, adapter: str | None = None, **extra: object) -> dict:
    """Where a checkpoint came from; ``base_model`` is the original unpruned model when known."""
    record: dict = {"parent": str(base)}
    plan = Path(base) / "plan.json"
    parent_lineage = Path(base) / "lineage.json"
    if plan.is_file():
        record["base_model"] = json.loads(plan.read_text()).get("base_model")
    elif parent_lineage.is_file():
        record["base_model"] = json.loads(parent_lineage.read_text()).get("base_model")
    else:
        record["base_model"] = str(base)
    if adapter is not None:
        record["adapter"] = str(adapter)
    record.update(extra)
    return record


def merge_adapter(args: MergeArgs) -> Path:
    from infra.modeling import adapter_base, load_model, load_tokenizer

    if not is_adapter_dir(args.adapter):
        raise ModelLoadError(f"{args.adapter}: not an adapter directory (no adapter_config.json)")
    base = args.base or adapter_base(args.adapter)
    manifest = Manifest("train.merge_adapter", config=args)
    manifest.add_input("base", base)
    manifest.add_input("adapter", args.adapter)
    model = load_model(base, adapter=args.adapter, dtype=args.dtype, device="cpu", merge_adapter=True)
    tokenizer_source = args.adapter if (Path(args.adapter) / "tokenizer_config.json").exists() else base
    tokenizer = load_tokenizer(tokenizer_source)
    output_dir = Path(args.output_dir)
    with atomic_directory(output_dir, overwrite=args.overwrite) as temporary:
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        for name in CARRIED_FILES:
            if (Path(base) / name).is_file():
                shutil.copy2(Path(base) / name, temporary / name)
        atomic_write_json(temporary / "lineage.json", lineage(base, args.adapter))
        manifest.write(temporary)
    print(
        f"[merge] {base} + {args.adapter} -> {output_dir}: {len(decoder_layers(model))} layers, "
        f"{count_parameters(model) / 1e6:.2f}M parameters"
    )
    return output_dir


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(MergeArgs, argv, doc=__doc__, gpu_stage=True)
    try:
        merge_adapter(args)
    except (ConfigError, ModelLoadError, FileExistsError, FileNotFoundError) as error:
        return report_error(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
