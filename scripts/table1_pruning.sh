#!/usr/bin/env bash
#SBATCH --job-name=table1
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=1-03:00:00
# Tables 1 and 3: retention after 25% pruning by reverse order, block influence and the iterative search,
# each model fine-tuned on Alpaca-cleaned with the dataset's own responses for 2 epochs (the setting of
# Lu et al., 2024, that the paper's rows follow). The pruned models without recovery are extra rows.
#   bash scripts/table1_pruning.sh llama-3.1-8b-instruct     # or: sbatch scripts/table1_pruning.sh <model config>
#   PLAN=1 bash scripts/table1_pruning.sh llama-3.1-8b-instruct   # print the stage commands only
# Grid: artifacts.table_1 of $EXPERIMENTS (METHODS, AMOUNTS, RECOVERIES override it); the study variables (python -m orchestration.study --variables).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "table1_pruning"); PLAN=1 prints them.
exec python -m orchestration.plan table1_pruning "${1:-${MODEL_CONFIG:-}}"
