"""Render a task item into a model's prompt through the tokenizer's own chat template.

One :class:`~infra.model_spec.PromptSpec` per task serves every model: the differences (where the task's
instruction goes, special tokens, turn markers) come from the chat template and from
:class:`~infra.model_spec.ModelSpec`. The rendered text already holds the template's BOS; backends tokenize
it without adding special tokens, so every prompt carries exactly one BOS.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
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


def sft_messages(model: ModelSpec, prompt: str, response: str | None = None) -> list[dict[str, str]]:
    """The conversation used for self-generation and fine-tuning: the ``sft`` prompt spec (system turn
    "You are a helpful assistant." where the template has one), the prompt, and the answer when given."""
    messages = build_messages(model, model.prompt("sft"), {"prompt": prompt})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages


RESPONSE_MARK = "\u27e6LPR-RESPONSE\u27e7"  # not in any prompt; no whitespace for a template to trim


@dataclass
class TrainingText:
    """One conversation as the model is trained on it, and the characters the loss covers."""

    text: str
    start: int  # where the response begins
    end: int  # just after the end-of-turn token that closes it


def training_text(tokenizer: Any, spec: ModelSpec, record: dict[str, Any]) -> TrainingText:
    """The whole conversation rendered once by the model's template, the response span marked in it.

    The span is found by rendering the same conversation with a marker in place of the response: the text
    before the marker is the prompt exactly as the template writes it before an answer, the text after it the
    template's closing of the turn, which must start with one of the model's stop tokens (the end-of-turn
    token). Diffing two renderings (the prompt alone, then prompt + answer) is wrong for templates that place
    a turn differently depending on what follows it: Mistral v0.3 folds the system message into the *last*
    user turn, so the prompt rendered alone holds it while the conversation does not.
    """
    messages = sft_messages(spec, record["prompt"], record["response"])
    marked = sft_messages(spec, record["prompt"], RESPONSE_MARK)
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    template = tokenizer.apply_chat_template(marked, tokenize=False)
    where = f"{spec.name}: record {record.get('id', '?')}"
    if template.count(RESPONSE_MARK) != 1:
        raise ConfigError(f"{where}: the chat template does not render the assistant's answer once")
    before, after = template.split(RESPONSE_MARK)
    if not (text.startswith(before) and text.endswith(after) and len(text) >= len(before) + len(after)):
        raise ConfigError(f"{where}: the chat template renders the text around the answer differently")
    closing = next((token for token in spec.stop_tokens if after.startswith(token)), None)
    if closing is None:
        raise ConfigError(
            f"{where}: after the answer the template writes {after[:40]!r}, which starts with none of the "
            f"model config's stop_tokens {spec.stop_tokens}"
        )
    return TrainingText(text=text, start=len(before), end=len(text) - len(after) + len(closing))
