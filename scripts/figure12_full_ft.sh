#!/usr/bin/env bash
#SBATCH --job-name=figure12
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=16
#SBATCH --mem=256G
#SBATCH --time=72:00:00
# Figure 12: QLoRA against full fine-tuning of the iteratively pruned model on the same self-generated
# (Dolci) data, read on GSM8K; the QLoRA run is Table 2's. Full fine-tuning of a 7-8B model needs several
# GPUs: FULL_LAUNCH="accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml".
#   bash scripts/figure12_full_ft.sh qwen2.5-7b-instruct
#   PLAN=1 bash scripts/figure12_full_ft.sh qwen2.5-7b-instruct   # print the stage commands only
# Grid: artifacts.figure_12 of $EXPERIMENTS (METHODS, AMOUNTS, RECOVERIES, RECIPES override it); its tasks
# are evaluated (the other tasks of a shared run are added when another script needs them).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "figure12_full_ft"); PLAN=1 prints them.
exec python -m orchestration.plan figure12_full_ft "${1:-${MODEL_CONFIG:-}}"
