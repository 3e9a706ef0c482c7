"""Write a pruned checkpoint with a mergekit passthrough merge.

The merge config keeps the kept layer ranges as slices (``layer_range`` ends are exclusive). With
transformers 5, mergekit 0.1.5 writes the output config by changing ``num_hidden_layers`` alone, which fails
validation for models with per-layer lists (Qwen2, Gemma-2 ``layer_types``). We therefore hand mergekit a
``base_model`` whose config already describes the pruned model: a donor directory of links to the source
files plus the pruned config.json (kept layers' ``layer_types`` entries, in order). mergekit takes the
output config and tokenizer from that donor and the tensors from the slices, as usual.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from infra.files import atomic_directory, atomic_write_text, scratch_directory
from infra.manifest import Manifest
from layer_pruner.inmemory import PER_LAYER_CONFIG_KEYS
from layer_pruner.plan import PrunePlan

MERGEKIT_CONFIG_NAME = "mergekit_config.yaml"


def resolve_model_dir(name_or_path: str) -> Path:
    """A local directory for a hub id (from the cache when offline) or the path itself."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(
            name_or_path, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
        )
    )


def mergekit_config(plan: PrunePlan, model_path: str, dtype: str) -> dict[str, Any]:
    return {
        "merge_method": "passthrough",
        "dtype": dtype,
        "slices": [
            {"sources": [{"model": model_path, "layer_range": [start, end]}]}
            for start, end in plan.kept_ranges()
        ],
    }


def pruned_config_dict(source_config: dict[str, Any], plan: PrunePlan) -> dict[str, Any]:
    config = dict(source_config)
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else None
    target = text_config if text_config is not None and "num_hidden_layers" in text_config else config
    if target.get("num_hidden_layers") != plan.num_layers:
        raise ValueError(
            f"plan is for {plan.num_layers} layers but the model config has {target.get('num_hidden_layers')}"
        )
    target["num_hidden_layers"] = len(plan.kept_layers)
    for key in PER_LAYER_CONFIG_KEYS:
        entries = target.get(key)
        if isinstance(entries, list) and len(entries) == plan.num_layers:
            target[key] = [entries[i] for i in plan.kept_layers]
    return config


def _donor_directory(source: Path, donor: Path, plan: PrunePlan) -> None:
    donor.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name != "config.json" and entry.is_file():
            os.symlink(entry.resolve(), donor / entry.name)
    config = json.loads((source / "config.json").read_text())
    (donor / "config.json").write_text(json.dumps(pruned_config_dict(config, plan), indent=2))


def source_dtype(model_dir: Path) -> str:
    config = json.loads((model_dir / "config.json").read_text())
    return str(config.get("dtype") or config.get("torch_dtype") or "bfloat16")


def materialize(
    plan: PrunePlan,
    output_dir: str | Path,
    *,
    manifest: Manifest | None = None,
    device: str = "cpu",
    out_shard_size: int = 500_000_000,
    dtype: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Run the merge into a temporary directory and rename it to ``output_dir`` when complete."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    source = resolve_model_dir(plan.base_model)
    dtype = dtype or source_dtype(source)
    config_dict = mergekit_config(plan, str(source), dtype)
    merge_config = MergeConfiguration.model_validate(config_dict)
    output_dir = Path(output_dir)
    # The donor lives beside the output under a pid-stamped name, so the next run removes a killed run's
    # donor (atomic_directory cleans both) instead of leaving it in the system's temporary directory.
    with atomic_directory(output_dir, overwrite=overwrite) as temporary:
        donor_root = scratch_directory(output_dir, "donor")
        try:
            donor = donor_root / "model"
            _donor_directory(source, donor, plan)
            run_config = MergeConfiguration.model_validate({**config_dict, "base_model": str(donor)})
            options = MergeOptions(
                device=device,
                lazy_unpickle=True,
                copy_tokenizer=True,
                out_shard_size=out_shard_size,
                write_model_card=False,
                quiet=True,
            )
            logging.getLogger("mergekit").setLevel(logging.WARNING)
            run_merge(run_config, str(temporary), options=options)
        finally:
            shutil.rmtree(donor_root, ignore_errors=True)
        atomic_write_text(
            temporary / MERGEKIT_CONFIG_NAME,
            yaml.safe_dump(merge_config.model_dump(mode="json", exclude_none=True), sort_keys=False),
        )
        plan.save(temporary)
        if manifest is not None:
            manifest.add_input("base_model", str(source))
            manifest.write(temporary)
    return output_dir


def count_checkpoint_parameters(model_dir: str | Path) -> int:
    """Parameters stored in a checkpoint's safetensors files, read from their headers (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for shard in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as handle:
            for name in handle.keys():
                numel = 1
                for dim in handle.get_slice(name).get_shape():
                    numel *= dim
                total += numel
    return total
