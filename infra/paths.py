"""Where things live: the repository root and the default cache for built artifacts."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Cache for artifacts built on the spot (the toy model); ``LPR_CACHE`` overrides it."""
    return Path(os.environ.get("LPR_CACHE", REPO_ROOT / ".cache"))


def unique_labels(paths: list[str], labels: list[str] | None = None, *, key: str = "labels") -> list[str]:
    """One label per input path, never two alike, so a report keyed by them loses no input.

    Given ``labels`` must be as many and distinct; otherwise each path is labelled by its shortest trailing
    part that tells it from the others (``bi-25/eval`` and ``reverse-25/eval``, not ``eval`` twice). A path
    given twice is an error."""
    from infra.config import ConfigError

    if labels:
        if len(labels) != len(paths):
            raise ConfigError(f"key {key!r}: {len(labels)} labels for {len(paths)} inputs")
        repeated = next((label for i, label in enumerate(labels) if label in labels[:i]), None)
        if repeated is not None:
            raise ConfigError(f"key {key!r}: label {repeated!r} is given twice")
        return list(labels)
    resolved = [str(Path(path).resolve()) for path in paths]
    repeated = next((paths[i] for i, where in enumerate(resolved) if where in resolved[:i]), None)
    if repeated is not None:
        raise ConfigError(f"{repeated}: given twice")
    parts = [Path(path).resolve().parts for path in paths]
    for depth in range(1, max((len(p) for p in parts), default=1) + 1):
        candidates = ["/".join(p[-depth:]) for p in parts]
        if len(set(candidates)) == len(candidates):
            return candidates
    return resolved
