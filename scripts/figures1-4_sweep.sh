#!/usr/bin/env bash
#SBATCH --job-name=sweep
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=4:00:00
# Figures 1-4: remove each layer alone (layers 1..L-1 of the model config) and record the task scores and
# responses (Figure 1), their degeneration (Figure 2), the arithmetic probe per ablated layer (Figure 3) and
# the code outcomes (Figure 4).
#   bash scripts/figures1-4_sweep.sh llama-3.1-8b-instruct       # every layer in one job (one engine)
#   bash scripts/slurm/submit.sh scripts/figures1-4_sweep.sh llama-3.1-8b-instruct   # SLURM: one array task
#   per layer (L-1 tasks: 31 for Llama, 27 for Qwen, 25 for Gemma), then the collecting run and the figures.
#   PLAN=1 bash scripts/figures1-4_sweep.sh llama-3.1-8b-instruct   # print the stage commands only
# Variables: N_ITEMS [registry: 100] items per task per layer, SWEEP_LAYERS [1..L-1] the layers removed (a
# comma list), and the study variables (python -m orchestration.study --variables).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "figures1-4_sweep"); PLAN=1 prints them.
exec python -m orchestration.plan figures1-4_sweep "${1:-${MODEL_CONFIG:-}}"
