"""Calibration texts for the scoring methods: by default 100 GSM8K test problems, question plus worked answer."""

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
    template: str = "{question}\n{answer}"
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
    return [fill(config.template, record, where) for record in records]
