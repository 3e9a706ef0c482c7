"""Read task data from a local file (JSONL, gzipped JSONL, JSON or parquet) or from the hub.

Compute nodes without internet point a task at a local file in the hub dataset's schema; with
``HF_DATASETS_OFFLINE=1`` hub ids resolve from the local cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.files import RecordError, load_jsonl


def load_records(
    source: str, *, hub_config: str | None = None, split: str = "test", limit: int | None = None
) -> list[dict[str, Any]]:
    """All records of ``source`` (first ``limit`` when given), as plain dicts in file order."""
    path = Path(source)
    if path.exists():
        records = _load_local(path)
    elif source.startswith((".", "/")) or source.endswith((".jsonl", ".json", ".parquet", ".gz")):
        raise FileNotFoundError(f"{source}: no such file")
    else:
        import datasets

        dataset = datasets.load_dataset(source, hub_config, split=split)
        records = [dict(row) for row in dataset]
    return records[:limit] if limit is not None else records


def _load_local(path: Path) -> list[dict[str, Any]]:
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return load_jsonl(path)
    if name.endswith(".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RecordError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            raise RecordError(f"{path}: expected a list of objects")
        return data
    raise RecordError(f"{path}: unsupported file type (use .jsonl, .jsonl.gz, .json or .parquet)")
