"""A released pruned model against its parent (configs/released, scripts/released_pair.sh): the same
evaluation, arithmetic probe and degeneration measures as our pruned models, retention against the parent."""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys

import pytest
import yaml

from infra.files import atomic_write_jsonl
from infra.paths import REPO_ROOT
from tests.helpers.hub_records import arithmetic_records


def test_plan_shows_the_pairs_evaluation_probe_and_degeneration(tmp_path):
    result = subprocess.run(
        ["bash", "scripts/released_pair.sh", "minitron-4b-depth"],
        cwd=REPO_ROOT, env={**os.environ, "PLAN": "1", "OUT": str(tmp_path)}, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [shlex.split(line) for line in result.stdout.splitlines()]
    modules = [line[line.index("-m") + 1] for line in lines]
    assert modules.count("eval.generative") == 2 and modules.count("analysis.arithmetic_probe") == 2
    assert modules.count("analysis.degeneration") == 4 and modules[-1] == "analysis.build_artifacts"
    models = {line[line.index("--model") + 1] for line in lines if "--model" in line}
    assert {"meta-llama/Llama-3.1-8B", "nvidia/Llama-3.1-Minitron-4B-Depth-Base"} <= models


def test_a_pair_of_tiny_models_runs_through_and_reads_as_retention_against_the_parent(tiny_models, tmp_path):
    parent = tiny_models["llama"]
    pruned = tmp_path / "pruned"
    prune = [sys.executable, "-m", "layer_pruner.prune", "--model", str(parent), "--method", "layers",
             "--layers", "3,5", "--output_dir", str(pruned)]  # fmt: skip
    assert subprocess.run(prune, cwd=REPO_ROOT, capture_output=True).returncode == 0
    pair = tmp_path / "tiny-pair.yaml"
    pair.write_text(yaml.safe_dump({"name": "tiny-pair", "model_config": "llama-3.1-8b-instruct",
                                    "parent": str(parent), "pruned": str(pruned)}))  # fmt: skip
    probe = atomic_write_jsonl(tmp_path / "probe.jsonl", arithmetic_records(40))
    env = {
        **os.environ, "OUT": str(tmp_path / "out"), "TASKS": "gsm8k", "ITEMS": "3", "MAX_NEW_TOKENS": "6",
        "TASK_DATA": f"gsm8k={REPO_ROOT}/tests/data/gsm8k/test.jsonl.gz", "BACKEND": "hf", "PROBE_ITEMS": "6",
        "PROBE_DATA": str(probe), "PRUNE_DTYPE": "float32",
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.plan", "released_pair", str(pair)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    root = tmp_path / "out" / "llama-3.1-8b-instruct"
    scores = {
        which: json.loads((root / "released" / "tiny-pair" / which / "eval" / "gsm8k.json").read_text())[
            "score"
        ]
        for which in ("parent", "pruned")
    }
    (row,) = csv.DictReader(open(root / "artifacts" / "released_tiny-pair.csv"))
    assert row["run"] == "pruned"
    if scores["parent"]:
        assert float(row["gsm8k"]) == pytest.approx(scores["pruned"] / scores["parent"], abs=1e-6)
    else:  # a random tiny parent scores 0: its retention is undefined, never a number
        assert row["gsm8k"] == ""
    measures = (root / "artifacts" / "released_tiny-pair_measures.md").read_text()
    assert "arithmetic probe, parent" in measures and "arithmetic probe, pruned" in measures
