"""Pruning candidates inside a running vLLM engine: the decoder-layer list swapped for the kept layers.

:func:`keep_decoder_layers` runs in every engine worker through ``LLM.apply_model`` (so tensor parallelism is
covered); it must live in an importable module, not ``__main__``. The full list is kept on the model, so
``kept=None`` restores it. Each kept layer keeps its own attention module and KV cache binding, and its own
sliding-window setting (Gemma-2's pattern stays with its layers). The engine must run eagerly without
compilation (a captured graph or compiled forward would keep the old layer sequence) and without prefix
caching across a switch (:class:`infra.generation.VLLMBackend` sees to both).
"""

from __future__ import annotations

from typing import Any


def _decoder(model: Any) -> Any:
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers"):
        raise TypeError(f"{type(model).__name__}: no model.layers to prune")
    return inner


def keep_decoder_layers(model: Any, kept: list[int] | None) -> int:
    """Run only the layers ``kept`` (in order); ``None`` restores every layer. Returns the layer count."""
    import torch

    inner = _decoder(model)
    if not hasattr(inner, "_lpr_all_layers"):
        inner._lpr_all_layers = inner.layers
        inner._lpr_bounds = (inner.start_layer, inner.end_layer)
    full = inner._lpr_all_layers
    if kept is None:
        inner.layers = full
        inner.start_layer, inner.end_layer = inner._lpr_bounds
        return len(full)
    start, end = inner._lpr_bounds
    if start != 0 or end != len(full):
        raise NotImplementedError(
            "in-engine candidates need the whole model on each worker (no pipeline split)"
        )
    if not kept or any(not 0 <= i < len(full) for i in kept):
        raise ValueError(f"kept layers {kept} out of range for {len(full)} layers")
    inner.layers = torch.nn.ModuleList([full[i] for i in kept])
    inner.start_layer, inner.end_layer = 0, len(kept)
    return len(kept)
