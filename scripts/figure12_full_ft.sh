#!/usr/bin/env bash
#SBATCH --job-name=figure12
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=4-03:00:00
# Figure 12: QLoRA against full fine-tuning of the iteratively pruned model on the same self-generated
# (Dolci) data, read on GSM8K; the QLoRA run is Table 2's. Its full fine-tuning runs on 8 GPUs under DeepSpeed
# ZeRO-3 (the paper study's FULL_LAUNCH), every other stage on one: on a cluster submit it with
# bash scripts/slurm/submit.sh scripts/figure12_full_ft.sh qwen2.5-7b-instruct, which gives each job its GPUs
# (this header's single GPU and time fit the one-GPU stages run in one job; the time is the estimate x 1.5).
#   bash scripts/figure12_full_ft.sh qwen2.5-7b-instruct
#   PLAN=1 bash scripts/figure12_full_ft.sh qwen2.5-7b-instruct   # print the stage commands only
# Grid: artifacts.figure_12 of $EXPERIMENTS (METHODS, AMOUNTS, RECOVERIES, RECIPES override it); its tasks
# are evaluated (the other tasks of a shared run are added when another script needs them).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "figure12_full_ft"); PLAN=1 prints them.
exec python -m orchestration.plan figure12_full_ft "${1:-${MODEL_CONFIG:-}}"
