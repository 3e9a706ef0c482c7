#!/usr/bin/env bash
#SBATCH --job-name=table6
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=15-22:00:00
# Table 6 and Figure 6: retention at each pruning amount (2 layers, ~10%, ~15%, 25%) per method after SGR
# fine-tuning on Dolci; the pruned models without recovery are extra rows.
#   bash scripts/table6_ratios.sh llama-3.1-8b-instruct
#   PLAN=1 bash scripts/table6_ratios.sh llama-3.1-8b-instruct   # print the stage commands only
# Grid: artifacts.table_6 of $EXPERIMENTS (METHODS, AMOUNTS, RECOVERIES override it); the study variables (python -m orchestration.study --variables).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "table6_ratios"); PLAN=1 prints them.
exec python -m orchestration.plan table6_ratios "${1:-${MODEL_CONFIG:-}}"
