"""Multi-process training on CPU (gloo): torchrun and accelerate launch with the repository's config.

Two processes with 2 examples each must train like one process with 4 (the same global batch), only rank 0
may write, and a run stopped after a checkpoint must resume to the same losses.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from infra.files import load_jsonl
from infra.paths import REPO_ROOT

pytestmark = pytest.mark.slow

# Relative tolerance on each step's training loss, two processes vs one. Step 1 must agree exactly: the same
# examples form the global batch (two processes each training alone on 2 examples would not). Later steps
# drift apart slightly: measured here, at most 1.3% over 6 steps.
LOSS_TOLERANCE = 0.03
RESUME_TOLERANCE = 0.06


def free_port() -> str:
    """A port nothing listens on now (the OS's choice), so two test workers never share one."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def _records(n: int = 32) -> list[dict]:
    pairs = [("Say A", "alpha alpha alpha"), ("Say B", "beta beta beta beta"), ("Say C", "gamma gamma")]
    return [
        {"id": f"r{i}", "prompt": f"{pairs[i % 3][0]} {i}", "response": pairs[i % 3][1]} for i in range(n)
    ]


def _launch(
    launcher: list[str], flags: list[str], output_dir: Path, batch: int
) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [*launcher, "-m", "train.sft", *flags, "--per_device_train_batch_size", str(batch)]
    result = subprocess.run(
        [*command, "--output_dir", str(output_dir)], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def _train_loss(output_dir: Path) -> dict[int, float]:
    return {m["step"]: m["train_loss"] for m in load_jsonl(output_dir / "metrics.jsonl") if "train_loss" in m}


def _relative(a: dict[int, float], b: dict[int, float]) -> dict[int, float]:
    return {step: round(abs(a[step] - b[step]) / b[step], 4) for step in sorted(b)}


def test_two_processes_train_like_one_and_resume(tiny_models, model_config_file, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    config = model_config_file("llama", tiny_models["llama"])
    flags = [
        "--recipe", "lora", "--model", str(tiny_models["llama"]), "--model_config", str(config),
        "--data", str(data), "--bf16", "false", "--dtype", "float32", "--lora_r", "8", "--lora_dropout", "0",
        "--warmup_steps", "0", "--gradient_accumulation_steps", "1", "--gradient_checkpointing", "false",
        "--max_length", "128", "--eval_strategy", "steps", "--eval_at_start", "true", "--eval_steps", "2",
        "--save_steps", "2", "--max_steps", "6", "--keep_checkpoints", "true",
        "--learning_rate", "1e-3", "--seed", "3",
    ]  # fmt: skip
    bin_dir = Path(sys.executable).parent
    single = _launch([sys.executable], flags, tmp_path / "single", batch=4)
    torchrun = [str(bin_dir / "torchrun"), "--nproc_per_node", "2", "--master_port", free_port()]
    two = _launch(torchrun, flags, tmp_path / "two", batch=2)

    # One process group of two: rank 0 alone logs and writes (one final line, each metric once).
    for result in (single, two):
        assert result.stdout.count("[sft] lora:") == 1, result.stdout[-2000:]
    records = load_jsonl(tmp_path / "two" / "metrics.jsonl")
    keys = [(m["step"], "eval_loss" in m, m.get("summary", False)) for m in records]
    assert len(keys) == len(set(keys)), keys
    assert (tmp_path / "two" / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "two" / "manifest.json").read_text())["global_step"] == 6

    # The same global batch: the loss curves agree step by step.
    one, both = _train_loss(tmp_path / "single"), _train_loss(tmp_path / "two")
    assert one.keys() == both.keys() == set(range(1, 7))
    print("[distributed] 2 vs 1 process, relative loss difference per step:", _relative(both, one))
    assert both[1] == pytest.approx(one[1], rel=1e-6)
    for step in one:
        assert both[step] == pytest.approx(one[step], rel=LOSS_TOLERANCE), (step, one, both)

    # Stopped after the step-4 checkpoint; resumed with accelerate launch and configs/accelerate/multi_gpu.yaml
    # (its launcher starts the processes; on CPU they join a gloo group).
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(tmp_path / "two", resumed_dir)
    for name in ("checkpoint-6", "adapter", "manifest.json"):
        path = resumed_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    accelerate = [
        str(bin_dir / "accelerate"), "launch", "--config_file", "configs/accelerate/multi_gpu.yaml",
        "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", free_port(),
    ]  # fmt: skip
    resumed = _launch(accelerate, flags, resumed_dir, batch=2)
    assert resumed.stdout.count("resuming from") == 1 and "(step 4)" in resumed.stdout
    again = _train_loss(resumed_dir)
    assert again.keys() == set(range(1, 7))
    print(
        "[distributed] resumed vs uninterrupted, relative loss difference per step:", _relative(again, both)
    )
    assert {s: again[s] for s in range(1, 5)} == {s: both[s] for s in range(1, 5)}  # kept, not retrained
    # One process resumes bit for bit (tests/test_train.py). Two do not: the resumed steps see their examples
    # in another order (measured here: steps 5 and 6 differ by 1.3% and 3.0%), hence a looser bound.
    for step in (5, 6):
        assert again[step] == pytest.approx(both[step], rel=RESUME_TOLERANCE), (step, again, both)
    assert (resumed_dir / "manifest.json").is_file()


def test_full_fine_tuning_keeps_a_global_batch_of_eight_on_two_processes(
    tiny_models, model_config_file, tmp_path
):
    """configs/train/full.yaml's global batch of 8, as the original's one process ran it (4 x 2): on two
    processes 4 x 1 each, so an epoch of 32 examples is ceil(32 / 8) = 4 optimizer steps either way."""
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records(32)))
    config = model_config_file("llama", tiny_models["llama"])
    flags = [
        "-m", "train.sft", "--recipe", "full", "--model", str(tiny_models["llama"]), "--model_config", str(config),
        "--data", str(data), "--bf16", "false", "--dtype", "float32", "--gradient_checkpointing", "false",
        "--max_length", "256", "--num_train_epochs", "1", "--eval_fraction", "0", "--save_steps", "4",
        "--keep_checkpoints", "true", "--warmup_steps", "0", "--learning_rate", "1e-4", "--seed", "3",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    torchrun = [
        str(Path(sys.executable).parent / "torchrun"),
        "--nproc_per_node",
        "2",
        "--master_port",
        free_port(),
    ]
    manifests = {}
    for name, launcher in {"one": [sys.executable], "two": torchrun}.items():
        command = [*launcher, *flags, "--output_dir", str(tmp_path / name)]
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        manifests[name] = json.loads((tmp_path / name / "manifest.json").read_text())
        assert result.stdout.count("[sft] batch 8 = ") == 1, result.stdout[-2000:]
    assert manifests["one"]["batch"] == {"per_process": 4, "processes": 1, "accumulation": 2, "global": 8}
    assert manifests["two"]["batch"] == {"per_process": 4, "processes": 2, "accumulation": 1, "global": 8}
    assert manifests["one"]["global_step"] == manifests["two"]["global_step"] == math.ceil(32 / 8)
    # The saved model is the trained one: its weights equal the last checkpoint's (step 4), tensor by tensor,
    # and it loads back as a model of the same layers.
    from safetensors.torch import load_file

    from infra.modeling import decoder_layers, load_model

    for name in ("one", "two"):
        saved = load_file(tmp_path / name / "model" / "model.safetensors")
        checkpoint = load_file(tmp_path / name / "checkpoint-4" / "model.safetensors")
        assert saved.keys() == checkpoint.keys()
        assert all(torch.equal(saved[key], checkpoint[key]) for key in saved), name
        assert (
            len(decoder_layers(load_model(str(tmp_path / name / "model"), dtype="float32", device="cpu")))
            == 8
        )
