"""The one resume rule of every stage: a stage that continues work on disk first compares the settings that
change a result with those the work was made with, in full, and refuses a mismatch naming every key that
differs. Generation files (``<file>.meta.json``), evaluation results (``<task>.json``), the iterative search
(``search.json``) and the single-layer sweep (``settings.json``) all go through :func:`check_resume`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.config import ConfigError
from infra.files import atomic_write_json, read_json


def as_saved(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as they read back from JSON (tuples as lists, paths as text)."""
    return json.loads(json.dumps(settings, default=str))


def differing(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The keys whose values differ (a key missing on one side differs), sorted."""
    new = as_saved(new)
    return sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))


def mismatch_message(where: Path, old: dict[str, Any], new: dict[str, Any], remedy: str) -> str:
    keys = differing(old, new)
    saved = as_saved(new)
    changes = "; ".join(f"{key}: {old.get(key)!r} -> {saved.get(key)!r}" for key in keys)
    return f"{where}: made with other settings ({changes}); {remedy}"


def check_resume(
    path: Path,
    settings: dict[str, Any],
    *,
    remedy: str = "pass --overwrite to redo it, or choose another output",
    write: bool = True,
) -> None:
    """Compare ``settings`` with those saved at ``path`` (JSON); a difference is a :class:`ConfigError`
    naming each key with its old and new value. With ``write``, the settings are saved when none are."""
    path = Path(path)
    if path.exists():
        old = read_json(path)
        if differing(old, settings):
            raise ConfigError(mismatch_message(path, old, settings, remedy))
    elif write:
        atomic_write_json(path, as_saved(settings))
