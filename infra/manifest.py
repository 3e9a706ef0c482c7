"""``manifest.json`` beside every stage's outputs: what ran, on what, with which code and packages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.files import atomic_write_json
from infra.layout import MANIFEST
from infra.paths import REPO_ROOT

KEY_PACKAGES = (
    "torch",
    "transformers",
    "mergekit",
    "lm_eval",
    "trl",
    "peft",
    "bitsandbytes",
    "nnsight",
    "datasets",
    "evalplus",
    "math-verify",
    "rouge-score",
    "vllm",
    "accelerate",
)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """The repository's HEAD commit, with ``-dirty`` when tracked files differ; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class Manifest:
    """Collects a stage's provenance; :meth:`write` puts ``manifest.json`` into a directory.

    >>> manifest = Manifest(stage="layer_pruner.prune", config=args, seeds={"seed": 0})
    >>> manifest.add_input("calibration", "data/gsm8k/test.jsonl")
    >>> manifest.write(output_dir)
    """

    def __init__(
        self,
        stage: str,
        config: Any = None,
        seeds: dict[str, int] | None = None,
        argv: list[str] | None = None,
    ):
        self.stage = stage
        self.config = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else (config or {})
        self.seeds = dict(seeds or {})
        self.argv = list(sys.argv if argv is None else argv)
        self.inputs: dict[str, str] = {}
        self.started = _now()
        self.extra: dict[str, Any] = {}

    def add_input(self, name: str, path_or_id: str | Path) -> None:
        value = str(path_or_id)
        if Path(value).exists():
            value = str(Path(value).resolve())
        self.inputs[name] = value

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *self.argv]),
            "config": self.config,
            "git_commit": git_commit(),
            "packages": package_versions(),
            "python": platform.python_version(),
            "seeds": self.seeds,
            "inputs": self.inputs,
            "started": self.started,
            "finished": _now(),
            **self.extra,
        }

    def write(self, directory: str | Path) -> Path:
        return atomic_write_json(Path(directory) / MANIFEST, self.as_dict())

    def write_beside(self, output_file: str | Path) -> Path:
        """For a stage whose output is one file: ``out.jsonl`` gets ``out.jsonl.manifest.json``."""
        return atomic_write_json(manifest_beside(output_file), self.as_dict())


def manifest_beside(output_file: str | Path) -> Path:
    path = Path(output_file)
    return path.with_name(path.name + ".manifest.json")


def is_complete(directory: str | Path) -> bool:
    """A stage's output directory counts as finished when its manifest is present."""
    return (Path(directory) / MANIFEST).is_file()
