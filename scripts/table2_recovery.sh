#!/usr/bin/env bash
#SBATCH --job-name=table2
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=11-00:00:00
# Tables 2 and 5: 25% pruning x {reverse, BI, iterative} x {Alpaca-cleaned (2 epochs), Dolci (90k rows,
# 1 epoch)} x {dataset responses (SFT), self-generated responses (SGR)}, QLoRA, then evaluation.
#   bash scripts/table2_recovery.sh llama-3.1-8b-instruct
#   PLAN=1 bash scripts/table2_recovery.sh llama-3.1-8b-instruct   # print the stage commands only
# Grid: artifacts.table_2 of $EXPERIMENTS (METHODS, AMOUNTS, RECOVERIES override it); the study variables (python -m orchestration.study --variables).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "table2_recovery"); PLAN=1 prints them.
exec python -m orchestration.plan table2_recovery "${1:-${MODEL_CONFIG:-}}"
