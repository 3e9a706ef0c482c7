"""The paper models' own chat templates (tests/data/chat_templates/README.md), by tiny-model architecture."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "data" / "chat_templates"
MODEL_OF_ARCH = {
    "llama": "llama-3.1-8b-instruct",
    "qwen2": "qwen2.5-7b-instruct",
    "mistral": "mistral-7b-instruct-v0.3",
    "gemma2": "gemma-2-2b-it",
}

# The paper configs' stop tokens that the tiny tokenizers do not train (configs/models/*.yaml).
REAL_EXTRA_TOKENS = {"llama": ("<|eom_id|>",), "qwen2": (), "mistral": (), "gemma2": ()}


def real_chat_template(arch: str) -> str:
    """The exact Jinja that the paper's model of this architecture ships in its tokenizer config."""
    return (TEMPLATES / f"{MODEL_OF_ARCH[arch]}.jinja").read_text(encoding="utf-8")
