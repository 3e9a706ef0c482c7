"""Remove decoder blocks from a loaded model in place, without copying a weight.

The kept blocks are re-indexed (attention ``layer_idx``, so the KV cache lines up), and the config's layer
count and per-layer lists (``layer_types``: Gemma-2's sliding/full pattern, Qwen2's sliding window) carry
the kept layers' entries in order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from infra.modeling import decoder_layers

# Config entries that hold one value per decoder layer.
PER_LAYER_CONFIG_KEYS = ("layer_types", "mlp_layer_types")


def _inner_model(model: Any) -> Any:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder() if hasattr(base, "get_decoder") else base.model


def _set_layer_index(layer: torch.nn.Module, index: int) -> None:
    for module in layer.modules():
        if hasattr(module, "layer_idx"):
            module.layer_idx = index


def pruned_config_values(config: Any, kept: list[int]) -> dict[str, Any]:
    """The config entries that change when only ``kept`` layers remain."""
    values: dict[str, Any] = {"num_hidden_layers": len(kept)}
    for key in PER_LAYER_CONFIG_KEYS:
        entries = getattr(config, key, None)
        if isinstance(entries, (list, tuple)) and len(entries) == config.num_hidden_layers:
            values[key] = [entries[i] for i in kept]
    return values


def apply_config_values(config: Any, values: dict[str, Any]) -> None:
    # Per-layer lists first would fail validation; set them together without triggering it in between.
    for key, value in values.items():
        config.__dict__[key] = value


def keep_only(model: Any, kept: list[int]) -> list[torch.nn.Module]:
    """Keep the decoder blocks at ``kept`` (in order); return the previous block list to restore it."""
    inner = _inner_model(model)
    layers = decoder_layers(model)
    original = list(layers)
    config = model.config
    values = pruned_config_values(config, kept)
    inner.layers = torch.nn.ModuleList([original[i] for i in kept])
    for new_index, layer in enumerate(inner.layers):
        _set_layer_index(layer, new_index)
    for target in {id(config): config, id(inner.config): inner.config}.values():
        apply_config_values(target, values)
    return original


def restore(model: Any, original: list[torch.nn.Module], original_values: dict[str, Any]) -> None:
    inner = _inner_model(model)
    inner.layers = torch.nn.ModuleList(original)
    for index, layer in enumerate(inner.layers):
        _set_layer_index(layer, index)
    for target in {id(model.config): model.config, id(inner.config): inner.config}.values():
        apply_config_values(target, original_values)


def drop_layers(model: Any, removed: list[int]) -> Any:
    """Remove the decoder blocks at ``removed`` from ``model`` in place; return the model."""
    num_layers = len(decoder_layers(model))
    removed_set = set(removed)
    keep_only(model, [i for i in range(num_layers) if i not in removed_set])
    return model


@contextlib.contextmanager
def layers_removed(model: Any, removed: list[int]) -> Iterator[Any]:
    """Temporarily remove blocks (a pruning candidate); the model is restored on exit, even on error."""
    num_layers = len(decoder_layers(model))
    config = model.config
    original_values = {"num_hidden_layers": config.num_hidden_layers}
    for key in PER_LAYER_CONFIG_KEYS:
        if isinstance(getattr(config, key, None), (list, tuple)):
            original_values[key] = list(getattr(config, key))
    removed_set = set(removed)
    original = keep_only(model, [i for i in range(num_layers) if i not in removed_set])
    try:
        yield model
    finally:
        restore(model, original, original_values)
