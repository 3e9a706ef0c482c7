"""``plan.json``: which layers a method removes, and the evidence that chose them."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.experiments import PRUNING_METHODS as METHODS
from infra.files import atomic_write_json, read_json

PLAN_NAME = "plan.json"


class PlanError(ValueError):
    pass


def layers_to_remove(num_layers: int, *, n: int | None = None, ratio: float | None = None) -> int:
    """How many layers a method removes: ``n`` itself, or ``ratio`` of the layers rounded (25% of 32 -> 8)."""
    if (n is None) == (ratio is None):
        raise PlanError("give exactly one of n or ratio")
    if ratio is not None:
        if not 0 < ratio < 1:
            raise PlanError(f"ratio must be in (0, 1), got {ratio}")
        n = int(math.floor(num_layers * ratio + 0.5))
    assert n is not None
    if not 1 <= n < num_layers:
        raise PlanError(f"cannot remove {n} of {num_layers} layers (at least one must remain)")
    return n


def validate_removal(num_layers: int, removed: list[int]) -> list[int]:
    """Check a list of layer indices to remove; return it sorted. Removing layer 0 warns."""
    negatives = [i for i in removed if i < 0]
    if negatives:
        raise PlanError(f"negative layer index {negatives[0]} (indices count from 0)")
    out_of_range = [i for i in removed if i >= num_layers]
    if out_of_range:
        raise PlanError(
            f"layer index {out_of_range[0]} out of range: the model has {num_layers} layers (0-{num_layers - 1})"
        )
    duplicates = sorted({i for i in removed if removed.count(i) > 1})
    if duplicates:
        raise PlanError(f"layer {duplicates[0]} listed more than once")
    if len(removed) >= num_layers:
        raise PlanError(f"removing all {num_layers} layers leaves no model")
    if not removed:
        raise PlanError("no layer to remove")
    if 0 in removed:
        warnings.warn("removing layer 0 (the first block) usually breaks the model", stacklevel=2)
    return sorted(removed)


@dataclass
class PrunePlan:
    base_model: str
    method: str
    num_layers: int
    removed_layers: list[int]
    n: int
    ratio: float | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise PlanError(f"unknown method {self.method!r} (known: {', '.join(METHODS)})")
        self.removed_layers = validate_removal(self.num_layers, list(self.removed_layers))

    @property
    def kept_layers(self) -> list[int]:
        removed = set(self.removed_layers)
        return [i for i in range(self.num_layers) if i not in removed]

    def kept_ranges(self) -> list[tuple[int, int]]:
        """Contiguous kept ranges as half-open ``[start, end)`` pairs (mergekit's ``layer_range``)."""
        ranges: list[tuple[int, int]] = []
        for i in self.kept_layers:
            if ranges and ranges[-1][1] == i:
                ranges[-1] = (ranges[-1][0], i + 1)
            else:
                ranges.append((i, i + 1))
        return ranges

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kept_layers": self.kept_layers}

    def save(self, directory: str | Path) -> Path:
        return atomic_write_json(Path(directory) / PLAN_NAME, self.as_dict())

    @classmethod
    def load(cls, path: str | Path) -> PrunePlan:
        path = Path(path)
        if path.is_dir():
            path = path / PLAN_NAME
        data = read_json(path)
        data.pop("kept_layers", None)
        try:
            return cls(**data)
        except TypeError as error:
            raise PlanError(f"{path}: {error}") from None
