"""End to end: the experiment scripts fail fast on bad input, and a reduced toy study runs every stage and
every method through the same scripts as the GPU experiments."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from infra.paths import REPO_ROOT


def run_script(
    args: list[str], env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["scripts/table1_pruning.sh"], {}, "give a model config name"),
        (
            ["scripts/table6_ratios.sh", "no-such-model"],
            {},
            "configs/models/no-such-model.yaml: no such model config",
        ),
        (
            ["scripts/figures1-4_sweep.sh", "toy-llama"],
            {"MODEL_PATH": "/nonexistent/toy"},
            "missing model directory /nonexistent/toy",
        ),
        (
            ["scripts/table2_recovery.sh", "tiny-llama"],
            {"DOLCI": "/nope/dolci.jsonl", "MODEL_PATH": "{model}"},
            "missing input /nope/dolci.jsonl (DOLCI)",
        ),
        (
            ["scripts/figure8_code.sh", "llama-3.1-8b-instruct"],
            {"RECOVERIES": "sgr-mine", "MINE": "/nope/data.jsonl", "MODEL_PATH": "{model}"},
            "no key 'datasets.mine.epochs'",
        ),
        (
            ["scripts/figure8_code.sh", "tiny-llama"],
            {"MODEL_PATH": "{model}"},
            "figure_8 has no runs for tiny-llama (the paper shows it for llama-3.1-8b-instruct,",
        ),
        (
            ["scripts/table4_lora.sh", "tiny-llama"],
            {"RECOVERIES": "rl-alpaca", "MODEL_PATH": "{model}"},
            "recovery rl-alpaca: expected none, sft-<dataset> or sgr-<dataset>",
        ),
        (
            ["scripts/upper_bound.sh", "qwen2.5-7b-instruct"],
            {"GSM8K": "/nope/train.jsonl", "MODEL_PATH": "{model}"},
            "missing input /nope/train.jsonl",
        ),
        (
            ["scripts/upper_bound.sh", "tiny-llama"],
            {"MODEL_PATH": "{model}"},
            "no upper bound for tiny-llama (the paper ran it for qwen2.5-7b-instruct)",
        ),
    ],
)
def test_scripts_fail_fast_naming_the_problem(args, env, message, tiny_models, tmp_path):
    env = {k: v.replace("{model}", str(tiny_models["llama"])) for k, v in env.items()}
    result = run_script(args, {**env, "OUT": str(tmp_path / "out")})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "out" / "tiny-llama" / "base").exists()  # nothing ran


@pytest.mark.slow
def test_small_toy_study_runs_every_stage_and_its_findings_hold(tmp_path):
    """The README's main command at the smallest scale whose findings hold (configs/studies/toy_small.yaml:
    the toy study's own model, 30 items, 24 LoRA steps), narrowed to one method: both recoveries, QLoRA, LoRA
    and full fine-tuning, two pruning amounts, the upper bound, the sweep, the probe, the profile, and every
    artifact of the toy grid (configs/experiments/toy.yaml). Every finding is computed; the toy's four claims
    hold (and, at this scale, (5) and (6)); a rerun plans no stage. The model is the checkout's cached toy
    model (.cache/models/toy-llama, built here when missing, as the toy study builds it)."""
    env = {
        "STUDY": "toy_small",
        "OUT": str(tmp_path / "out"),
        "METHODS": "bi",
        "AMOUNTS": "1layers 25pct",
        "SAMPLES": "2",
    }
    result = run_script(["scripts/toy_study.sh"], env, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = tmp_path / "out" / "toy-llama"
    # The shared stages: base scores and greedy mastery; SGR data and the base probe.
    greedy = json.loads((results / "toy_model_greedy" / "toy_arithmetic.json").read_text())
    assert greedy["score"] >= 0.9 and greedy["n"] == 30  # the trained model, not an untrained one
    assert (results / "data" / "toy.sgr.jsonl").is_file()
    assert any((results / "probe" / "base").iterdir())
    for amount, removed in (("25pct", 2), ("1layers", 1)):
        plan = json.loads((results / "pruned" / f"bi-{amount}" / "model" / "plan.json").read_text())
        assert plan["method"] == "bi" and len(plan["removed_layers"]) == removed
        assert (results / "pruned" / f"bi-{amount}" / "eval" / "toy_arithmetic.json").is_file()
    for run in ("bi-25pct-sft-toy", "bi-25pct-sgr-toy", "bi-25pct-sgr-toy-qlora", "bi-1layers-sgr-toy"):
        assert (results / "recovered" / run / "train" / "adapter" / "adapter_config.json").is_file(), run
        assert (results / "recovered" / run / "eval" / "toy_arithmetic.json").is_file(), run
    assert (results / "recovered" / "bi-25pct-sgr-toy-full" / "train" / "model" / "config.json").is_file()
    upper = json.loads((results / "upper_bound" / "pruned" / "model" / "plan.json").read_text())
    assert upper["method"] == "iterative"
    assert (results / "upper_bound" / "sgr2-lora" / "eval" / "toy_arithmetic.json").is_file()
    assert len(list((results / "sweep").glob("layer_*.json"))) == 7
    report = json.loads((results / "artifacts" / "artifacts.json").read_text())
    assert set(report["missing"]) == {"released"}, report["missing"]  # no released pair was evaluated
    assert {"table_1", "table_4", "figure_3", "figure_6", "figure_11", "figure_12", "findings"} <= set(
        report["built"]
    )
    # The toy classification task ran through lm-eval for the unpruned and the pruned models only.
    assert (results / "base" / "eval" / "classification" / "toy_choice.jsonl").is_file()
    assert (results / "pruned" / "bi-25pct" / "eval" / "classification" / "classification.json").is_file()
    assert not (results / "recovered" / "bi-25pct-sgr-toy" / "eval" / "classification").exists()
    findings = json.loads((results / "artifacts" / "findings.json").read_text())
    assert [f["estimate"] is not None and f["ci"] is not None for f in findings] == [True] * 6
    assert [f["holds"] for f in findings] == [True] * 6, [(f["estimate"], f["ci"]) for f in findings]
    # A rerun finds every stage complete: the model is ready and only the artifacts are built again.
    again = run_script(["scripts/toy_study.sh"], env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    ran = [line.split(" -> ")[0] for line in again.stdout.splitlines() if line.startswith("[plan] ")]
    assert ran == ["[plan] model ready", "[plan] analysis.build_artifacts"], ran
