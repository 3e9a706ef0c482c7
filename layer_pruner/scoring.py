"""Layer-importance scores from one forward pass per calibration batch.

- Block Influence (ShortGPT, the paper's cosine notebook): per layer, 1 - cosine between the hidden state
  entering and the one leaving the block, per token, averaged over a text's tokens, then over texts. States
  are taken at the blocks themselves (before the final norm).
- ``bi_shortgpt``: the official ShortGPT variant over Hugging Face ``hidden_states``, whose last entry is
  after the final norm.
- Angular distance (Gromov et al. 2024): for each block of n consecutive layers, arccos(cosine)/pi between
  the input of its first layer and the output of its last, on the last non-pad token, averaged over texts.

Running sums keep memory independent of the number of calibration texts; padding is masked.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from infra.modeling import decoder_layers
from infra.progress import progress as progress_bar


def _batches(texts: list[str], batch_size: int) -> list[list[str]]:
    return [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]


def _encode(tokenizer: Any, texts: list[str], max_length: int, device: Any) -> dict[str, torch.Tensor]:
    tokenizer.padding_side = "right"
    return tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length).to(
        device
    )


class _BoundaryRecorder:
    """Forward hooks that capture each decoder block's input and output hidden states."""

    def __init__(self, model: Any):
        self.inputs: list[torch.Tensor | None] = []
        self.outputs: list[torch.Tensor | None] = []
        self.handles = []
        for index, layer in enumerate(decoder_layers(model)):
            self.inputs.append(None)
            self.outputs.append(None)
            self.handles.append(layer.register_forward_pre_hook(self._pre(index), with_kwargs=True))
            self.handles.append(layer.register_forward_hook(self._post(index)))

    def _pre(self, index: int):
        def hook(module, args, kwargs):
            self.inputs[index] = args[0] if args else kwargs["hidden_states"]

        return hook

    def _post(self, index: int):
        def hook(module, args, output):
            self.outputs[index] = output[0] if isinstance(output, tuple) else output

        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _masked_token_cosine_mean(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row: the mean over unmasked tokens of cos(a_t, b_t). Shapes [B, T, H], [B, T] -> [B]."""
    cosine = torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)
    mask = mask.to(cosine.dtype)
    return (cosine * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


@torch.no_grad()
def block_influence(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    *,
    batch_size: int = 1,
    max_length: int = 2048,
    variant: str = "blocks",
    progress: bool = True,
) -> list[float]:
    """BI per layer (higher = more important). ``variant``: ``blocks`` (default) or ``hf_hidden_states``."""
    device = next(model.parameters()).device
    num_layers = len(decoder_layers(model))
    sums = torch.zeros(num_layers, dtype=torch.float64)
    count = 0
    recorder = _BoundaryRecorder(model) if variant == "blocks" else None
    try:
        for batch in progress_bar(
            _batches(texts, batch_size), desc="block influence", disable=not progress, leave=False
        ):
            encoded = _encode(tokenizer, batch, max_length, device)
            mask = encoded["attention_mask"]
            if variant == "blocks":
                model(**encoded, use_cache=False)
                pairs = zip(recorder.inputs, recorder.outputs)
            elif variant == "hf_hidden_states":
                states = model(**encoded, use_cache=False, output_hidden_states=True).hidden_states
                pairs = zip(states[:-1], states[1:])
            else:
                raise ValueError(f"unknown BI variant {variant!r} (blocks or hf_hidden_states)")
            for index, (entering, leaving) in enumerate(pairs):
                sums[index] += _masked_token_cosine_mean(entering, leaving, mask).double().sum().cpu()
            count += len(batch)
    finally:
        if recorder is not None:
            recorder.close()
    return [1.0 - float(value) for value in (sums / count)]


@torch.no_grad()
def angular_distances(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    n: int,
    *,
    batch_size: int = 1,
    max_length: int = 2048,
    progress: bool = True,
) -> list[float]:
    """Mean angular distance for each block start l (blocks l..l+n-1), on each text's last non-pad token."""
    device = next(model.parameters()).device
    num_layers = len(decoder_layers(model))
    if not 1 <= n < num_layers:
        raise ValueError(f"block size {n} must be between 1 and {num_layers - 1}")
    sums = torch.zeros(num_layers - n + 1, dtype=torch.float64)
    count = 0
    recorder = _BoundaryRecorder(model)
    try:
        for batch in progress_bar(
            _batches(texts, batch_size), desc="angular distance", disable=not progress, leave=False
        ):
            encoded = _encode(tokenizer, batch, max_length, device)
            model(**encoded, use_cache=False)
            last = encoded["attention_mask"].sum(dim=1) - 1
            rows = torch.arange(len(batch), device=device)
            # boundary[l] is the state entering layer l; boundary[L] the one leaving the last layer.
            boundary = [state[rows, last] for state in recorder.inputs] + [recorder.outputs[-1][rows, last]]
            for start in range(num_layers - n + 1):
                cosine = torch.nn.functional.cosine_similarity(
                    boundary[start].float(), boundary[start + n].float(), dim=-1
                ).clamp(-1.0, 1.0)
                sums[start] += (torch.arccos(cosine) / math.pi).double().sum().cpu()
            count += len(batch)
    finally:
        recorder.close()
    return [float(value) for value in (sums / count)]


def lowest(scores: list[float], n: int, *, exclude: tuple[int, ...] = ()) -> list[int]:
    """Indices of the n lowest scores (ties to the later layer), skipping ``exclude``."""
    candidates = [i for i in range(len(scores)) if i not in exclude]
    return sorted(sorted(candidates, key=lambda i: (scores[i], -i))[:n])
