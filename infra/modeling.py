"""Load a causal LM and its tokenizer from a hub id or a local directory, with an optional LoRA adapter.

Offline-friendly: a local directory is read with ``local_files_only``; on compute nodes without internet set
``HF_HUB_OFFLINE=1`` and a pre-filled ``HF_HOME`` and hub ids resolve from the cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DTYPES = ("auto", "float32", "bfloat16", "float16")


class ModelLoadError(ValueError):
    pass


def resolve_dtype(name: str) -> Any:
    import torch

    if name not in DTYPES:
        raise ModelLoadError(f"dtype {name!r}: expected one of {', '.join(DTYPES)}")
    return "auto" if name == "auto" else getattr(torch, name)


def resolve_device(name: str = "auto") -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def is_adapter_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def adapter_base(path: str | os.PathLike) -> str:
    config = json.loads((Path(path) / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(f"{path}/adapter_config.json: no base_model_name_or_path; pass the base model")
    return base


def _looks_like_path(name_or_path: str) -> bool:
    """A hub id is ``name`` or ``namespace/name``; anything else that does not exist is a missing path."""
    return (
        Path(name_or_path).is_absolute()
        or name_or_path.startswith((".", "~"))
        or name_or_path.count("/") > 1
        or "\\" in name_or_path
    )


def _local_kwargs(name_or_path: str) -> dict[str, Any]:
    if Path(name_or_path).exists():
        return {"local_files_only": True}
    if _looks_like_path(name_or_path):
        raise ModelLoadError(f"{name_or_path}: no such directory")
    return {}


def check_causal_lm(name_or_path: str) -> Any:
    """Load and check the config; a directory that is not a causal LM is a clear error."""
    import transformers

    path = Path(name_or_path)
    if path.exists() and not (path / "config.json").is_file():
        raise ModelLoadError(f"{path}: not a model directory (no config.json)")
    local = _local_kwargs(name_or_path)
    try:
        config = transformers.AutoConfig.from_pretrained(name_or_path, **local)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{name_or_path}: cannot read the model config ({error})") from None
    architectures = getattr(config, "architectures", None) or []
    mapping = transformers.models.auto.modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    causal_classes = set(mapping.values())
    if architectures:
        is_causal = any(a.endswith("ForCausalLM") or a in causal_classes for a in architectures)
    else:
        is_causal = config.model_type in mapping
    if not is_causal:
        raise ModelLoadError(
            f"{name_or_path}: model type {config.model_type!r} is not a causal language model"
        )
    return config


def model_context_limit(name_or_path: str) -> int | None:
    """The positions the model was built for (its config's ``max_position_embeddings``), when it says."""
    limit = getattr(check_causal_lm(name_or_path), "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else None


def load_tokenizer(name_or_path: str, *, padding_side: str = "left") -> Any:
    import transformers

    if is_adapter_dir(name_or_path) and not (Path(name_or_path) / "tokenizer_config.json").exists():
        name_or_path = adapter_base(name_or_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(name_or_path, **_local_kwargs(name_or_path))
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    name_or_path: str,
    *,
    adapter: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    merge_adapter: bool = False,
) -> Any:
    """A causal LM in eval mode on ``device``; ``adapter`` (or a directory that is an adapter) is applied."""
    import transformers

    if adapter is None and is_adapter_dir(name_or_path):
        adapter, name_or_path = name_or_path, adapter_base(name_or_path)
    check_causal_lm(name_or_path)
    device = resolve_device(device)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        name_or_path, dtype=resolve_dtype(dtype), **_local_kwargs(name_or_path)
    )
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, **_local_kwargs(adapter))
        if merge_adapter:
            model = model.merge_and_unload()
    model.to(device)
    model.eval()
    return model


def decoder_layers(model: Any) -> Any:
    """The ``nn.ModuleList`` of decoder blocks (``model.model.layers`` for every supported architecture)."""
    base = model
    if hasattr(base, "get_base_model"):
        base = base.get_base_model()
    inner = base.get_decoder() if hasattr(base, "get_decoder") else base.model
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ModelLoadError(f"{type(base).__name__}: no decoder layer list found")
    return layers


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())
