"""A LoRA adapter that changes the model (random B; peft starts B at zero), for adapter-loading tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def random_lora(model: Any, output_dir: Path, rank: int = 4) -> Any:
    """Wrap ``model`` in a q/v LoRA of ``rank`` with random B, save it to ``output_dir``, return the peft model."""
    import torch
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, parameter in lora.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)  # a trained-looking adapter
    lora.save_pretrained(output_dir)
    return lora
