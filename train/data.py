"""Training examples: prompt + response records rendered by the model's chat template and tokenized.

The conversation is the one self-generation used (``infra.prompts.sft_messages``: the system turn where the
template has one, the prompt as the user turn, then the answer), rendered once as a whole, which is the text
the original trained on. The loss covers the answer and the end-of-turn token that closes it, nothing of the
prompt (:func:`training_text`); TRL's SFTTrainer takes the tokenized rows with their ``completion_mask``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import ConfigError
from infra.files import RecordError, load_jsonl
from infra.model_spec import ModelSpec
from infra.prompts import TrainingText, training_text


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


def tokenize_training_text(tokenizer: Any, example: TrainingText) -> dict[str, list[int]]:
    """Token ids of the whole text (its BOS is the template's; none added) and the completion mask: 1 on every
    token that overlaps the response span (a token that carries the first word's leading space counts)."""
    encoded = tokenizer(example.text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(start < example.end and end > example.start) for start, end in encoded["offset_mapping"]]
    return {"input_ids": list(encoded["input_ids"]), "completion_mask": mask}


def to_dataset(spec: ModelSpec, records: list[dict[str, Any]], tokenizer: Any) -> Any:
    """The records tokenized for TRL's SFTTrainer (``input_ids`` and ``completion_mask``)."""
    import datasets

    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{spec.name}: the loss mask needs a fast tokenizer (character offsets)")
    rows = [tokenize_training_text(tokenizer, training_text(tokenizer, spec, record)) for record in records]
    return datasets.Dataset.from_list(rows)
