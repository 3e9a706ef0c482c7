"""Render a task item into a model's prompt through the tokenizer's own chat template.

One :class:`~infra.model_spec.PromptSpec` per task serves every model: the differences (where the task's
instruction goes, special tokens, turn markers) come from the chat template and from
:class:`~infra.model_spec.ModelSpec`. The rendered text already holds the template's BOS; backends tokenize
it without adding special tokens, so every prompt carries exactly one BOS.
"""

from __future__ import annotations

import string
from typing import Any

from infra.config import ConfigError
from infra.model_spec import ModelSpec, PromptSpec

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


def fill(template: str, item: dict[str, Any], where: str = "template") -> str:
    """``template.format`` over ``item``; a missing field is an error naming it (item text is not re-parsed)."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    missing = [name for name in names if name not in item]
    if missing:
        raise ConfigError(f"{where}: the item has no field {missing[0]!r} (fields: {', '.join(item)})")
    return template.format_map(item)


def build_messages(model: ModelSpec, spec: PromptSpec, item: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation: the task's instruction as a system turn or before the user text (as the model
    config places it, followed by a blank line), an optional real system turn, then the user text."""
    messages = []
    user = fill(spec.user, item, f"{model.name}: user template")
    if spec.instruction:
        if model.instruction_placement == "system":
            messages.append({"role": "system", "content": spec.instruction})
        else:
            user = f"{spec.instruction}\n\n{user}"
    if spec.system and model.supports_system_turn and not messages:
        messages.append({"role": "system", "content": spec.system})
    messages.append({"role": "user", "content": user})
    return messages


def render_prompt(tokenizer: Any, model: ModelSpec, task: str, item: dict[str, Any]) -> str:
    """The text the model continues: chat-rendered turns, generation prompt, then the assistant prefix."""
    spec = model.prompt(task)
    text = tokenizer.apply_chat_template(
        build_messages(model, spec, item), tokenize=False, add_generation_prompt=True
    )
    return text + fill(spec.assistant_prefix, item, f"{model.name}: assistant prefix")


def chat_messages(
    model: ModelSpec, prompt: str, response: str | None = None, system: str | None = None
) -> list[dict]:
    """A conversation for SFT or self-generation: optional system turn, the user prompt, the answer."""
    messages = []
    if system and model.supports_system_turn:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages


def sft_messages(model: ModelSpec, prompt: str, response: str | None = None) -> list[dict[str, str]]:
    """The conversation used for self-generation and fine-tuning: the ``sft`` prompt spec (system turn
    "You are a helpful assistant." where the template has one), the prompt, and the answer when given."""
    messages = build_messages(model, model.prompt("sft"), {"prompt": prompt})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages
