#!/usr/bin/env bash
#SBATCH --job-name=upper-bound
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=2-11:00:00
# GSM8K upper bound (appendix A.6.2, Figure 11): prune by the iterative search scored on GSM8K alone, then
# fine-tune on the unpruned model's answers to the GSM8K training questions (8 per question, 2 epochs),
# QLoRA and full fine-tuning, and evaluate on GSM8K test. Its full fine-tuning runs on 8 GPUs (FULL_LAUNCH): on
# a cluster submit it with bash scripts/slurm/submit.sh scripts/upper_bound.sh qwen2.5-7b-instruct.
#   bash scripts/upper_bound.sh qwen2.5-7b-instruct
#   PLAN=1 bash scripts/upper_bound.sh qwen2.5-7b-instruct   # print the stage commands only
# Settings: upper_bound of $EXPERIMENTS. Variables: GSM8K (a local copy of the training questions, e.g.
# tests/data/gsm8k/train.jsonl.gz), UPPER_BOUND_TASKS, UPPER_BOUND_SEARCH_TASKS, SAMPLES, RECIPES.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "upper_bound"); PLAN=1 prints them.
exec python -m orchestration.plan upper_bound "${1:-${MODEL_CONFIG:-}}"
