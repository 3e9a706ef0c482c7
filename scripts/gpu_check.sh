#!/usr/bin/env bash
# Run first on a GPU node: does the GPU path work here? Needs a CUDA device (exits 2 naming what it saw when
# there is none). About ten minutes on an A100 for SmolLM2; the paper models take longer to load.
#   bash scripts/gpu_check.sh                          # SmolLM2-135M-Instruct: vLLM's engine, QLoRA, the rates
#   bash scripts/gpu_check.sh llama-3.1-8b-instruct    # a prefetched paper model: its own rates for the estimate
# What each step checks: python -m orchestration.gpu_check --help. The measured rates go to
# outputs/gpu_check/<model config>.throughput.yaml, which python -m orchestration.gpu_hours reads.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python -m orchestration.gpu_check --model_config "${1:-smollm2-135m-instruct}" "${@:2}"
