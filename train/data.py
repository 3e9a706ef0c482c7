"""Training examples: prompt + response records rendered as TRL prompt-completion conversations.

The conversation is the one self-generation used (``infra.prompts.sft_messages``: the system turn where the
template has one, the prompt as the user turn), so the model is trained on exactly the context it answered
in. TRL's SFTTrainer renders prompt and prompt + completion with the tokenizer's chat template and masks
everything before the completion: the loss covers the assistant tokens only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import ConfigError
from infra.files import RecordError, load_jsonl
from infra.model_spec import ModelSpec
from infra.prompts import sft_messages


@dataclass
class TrainingRecords:
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    counts: dict[str, int]


def read_records(path: str, *, drop_truncated: bool = False) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Validated records (``prompt``, ``response``; ``id`` optional); errors name the file and line."""
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such data file")
    try:
        records = load_jsonl(path)
    except RecordError as error:
        raise ConfigError(str(error)) from None
    if not records:
        raise ConfigError(f"{path}: no training records (empty file)")
    kept, counts = [], {"records": len(records), "truncated_dropped": 0, "empty_response": 0}
    for number, record in enumerate(records, start=1):
        for key in ("prompt", "response"):
            if not isinstance(record.get(key), str):
                raise ConfigError(f"{path}:{number}: record needs a text {key!r} field")
        if drop_truncated and record.get("finish_reason") == "length":
            counts["truncated_dropped"] += 1
            continue
        if not record["response"].strip():
            counts["empty_response"] += 1
            continue
        kept.append({**record, "id": str(record.get("id", f"line-{number}"))})
    if not kept:
        raise ConfigError(f"{path}: no usable record ({counts})")
    counts["kept"] = len(kept)
    return kept, counts


def split_by_prompt(
    records: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out ``fraction`` of the prompts (all samples of a prompt fall on one side), seeded."""
    ids = sorted({record["id"] for record in records})
    random.Random(seed).shuffle(ids)
    n_eval = round(len(ids) * fraction)
    if fraction > 0 and n_eval == 0 and len(ids) > 1:
        n_eval = 1
    held_out = set(ids[:n_eval])
    train = [r for r in records if r["id"] not in held_out]
    evaluation = [r for r in records if r["id"] in held_out]
    if not train:
        raise ConfigError(f"eval_fraction {fraction} leaves no training prompt ({len(ids)} prompts)")
    return train, evaluation


def load_training_records(
    path: str, eval_path: str | None, eval_fraction: float, seed: int, drop_truncated: bool = False
) -> TrainingRecords:
    records, counts = read_records(path, drop_truncated=drop_truncated)
    if eval_path:
        train, (evaluation, _) = records, read_records(eval_path, drop_truncated=drop_truncated)
    else:
        train, evaluation = split_by_prompt(records, eval_fraction, seed)
    counts.update({"train": len(train), "eval": len(evaluation)})
    return TrainingRecords(train, evaluation, counts)


def to_conversation(spec: ModelSpec, record: dict[str, Any]) -> dict[str, Any]:
    """TRL's conversational prompt-completion format."""
    return {
        "prompt": sft_messages(spec, record["prompt"]),
        "completion": [{"role": "assistant", "content": record["response"]}],
    }


def to_dataset(spec: ModelSpec, records: list[dict[str, Any]]) -> Any:
    import datasets

    return datasets.Dataset.from_list([to_conversation(spec, record) for record in records])
