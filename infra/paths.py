"""Where things live: the repository root and the default cache for built artifacts."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Cache for artifacts built on the spot (the toy model); ``LPR_CACHE`` overrides it."""
    return Path(os.environ.get("LPR_CACHE", REPO_ROOT / ".cache"))
