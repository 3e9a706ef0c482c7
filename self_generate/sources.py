"""Read an instruction dataset into (prompt, response) pairs, whatever its schema.

Schemas: ``alpaca`` (``instruction`` + ``\n`` + optional ``input``, ``output``: yahma/alpaca-cleaned), ``messages``
(a chat list: Dolci and other SFT mixtures; the last user message and the last assistant message, as the
original's download_and_filter.py took them), ``gsm8k``
(``question``, ``answer``) and ``fields`` (any prompt field, with an optional response field). ``auto``
picks the schema from the first record's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.config import ConfigError

SCHEMAS = ("auto", "alpaca", "messages", "gsm8k", "fields")


@dataclass
class Example:
    index: int
    prompt: str
    response: str | None
    source_id: str | None = None


def detect_schema(record: dict[str, Any], prompt_field: str | None) -> str:
    if prompt_field is not None:
        return "fields"
    if "instruction" in record:
        return "alpaca"
    if "messages" in record:
        return "messages"
    if "question" in record and "answer" in record:
        return "gsm8k"
    raise ConfigError(
        f"cannot tell the dataset's schema from its fields ({', '.join(record)}); "
        "give --schema or --prompt_field (and --response_field)"
    )


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected text, got {type(value).__name__}")
    return value.replace("\x00", "")  # NUL bytes break tokenizers and JSON tooling downstream


def _field(record: dict[str, Any], name: str, where: str) -> Any:
    if name not in record:
        raise ConfigError(f"{where}: no field {name!r} (fields: {', '.join(record) or 'none'})")
    return record[name]


def extract(
    record: dict[str, Any],
    index: int,
    schema: str,
    where: str,
    prompt_field: str | None = None,
    response_field: str | None = None,
) -> Example:
    """One record as an :class:`Example`; ``where`` (file:record) names the record in errors."""
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(record).__name__}")
    source_id = record.get("id")
    source_id = None if source_id is None else str(source_id)
    if schema == "alpaca":
        instruction = _text(_field(record, "instruction", where), f"{where}: instruction")
        extra = _text(record.get("input"), f"{where}: input")
        prompt = f"{instruction}\n{extra}" if extra else instruction
        response = _text(_field(record, "output", where), f"{where}: output")
    elif schema == "messages":
        messages = _field(record, "messages", where)
        if not isinstance(messages, list):
            raise ConfigError(f"{where}: 'messages' must be a list of {{role, content}} objects")
        prompt, response = "", None
        for position, message in enumerate(messages):
            if not isinstance(message, dict) or "role" not in message:
                raise ConfigError(f"{where}: messages[{position}] has no 'role'")
            if message["role"] == "user":
                prompt = _text(message.get("content"), f"{where}: messages[{position}]")
            elif message["role"] == "assistant":
                response = _text(message.get("content"), f"{where}: messages[{position}]") or None
    elif schema == "gsm8k":
        prompt = _text(_field(record, "question", where), f"{where}: question")
        response = _text(_field(record, "answer", where), f"{where}: answer")
    elif schema == "fields":
        if prompt_field is None:
            raise ConfigError("schema 'fields' needs --prompt_field")
        prompt = _text(_field(record, prompt_field, where), f"{where}: {prompt_field}")
        response = (
            _text(_field(record, response_field, where), f"{where}: {response_field}")
            if response_field
            else None
        )
    else:
        raise ConfigError(f"schema {schema!r}: expected one of {', '.join(SCHEMAS)}")
    return Example(index=index, prompt=prompt, response=response, source_id=source_id)
