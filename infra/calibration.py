"""Calibration texts for the scoring methods: by default the first 100 GSM8K test problems rendered as the
paper's cosine notebook did (lm-eval's chat GSM8K text: instruction, problem, worked answer, final answer).

Templates fill record fields and, for GSM8K records, ``rationale`` (the answer before ``####``) and ``final``
(the number after it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.datasets import load_records
from infra.prompts import fill


@dataclass
class CalibrationConfig:
    source: str = "openai/gsm8k"
    hub_config: str = "main"
    split: str = "test"
    template: str = (
        "Given the following problem, reason and give a final answer to the problem.\nProblem: {question}\n"
        'Your response should end with "The final answer is [answer]" where [answer] is the response to the '
        "problem.\n\n{rationale}The final answer is {final}"
    )
    count: int = 100
    max_length: int = 2048

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "split": self.split,
            "template": self.template,
            "count": self.count,
            "max_length": self.max_length,
        }


def calibration_texts(config: CalibrationConfig) -> list[str]:
    """The first ``count`` items of the source, rendered with ``template`` (as the paper's notebook did)."""
    records = load_records(
        config.source, hub_config=config.hub_config, split=config.split, limit=config.count
    )
    if not records:
        raise ValueError(f"{config.source}: no calibration items")
    where = f"calibration template ({Path(config.source).name})"
    return [fill(config.template, with_gsm8k_parts(record), where) for record in records]


def with_gsm8k_parts(record: dict[str, Any]) -> dict[str, Any]:
    """The record plus ``rationale`` and ``final`` when its ``answer`` is GSM8K's ``... #### N``."""
    answer = record.get("answer")
    if not isinstance(answer, str) or "####" not in answer:
        return record
    rationale, final = answer.split("####", 1)
    return {**record, "rationale": rationale, "final": final.strip()}
