#!/usr/bin/env bash
#SBATCH --job-name=table4
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=1-03:00:00
# Table 4: QLoRA against LoRA (unquantized) recovery of the BI- and reverse-pruned models, SGR on Dolci.
#   bash scripts/table4_lora.sh llama-3.1-8b-instruct
#   PLAN=1 bash scripts/table4_lora.sh llama-3.1-8b-instruct   # print the stage commands only
# Grid: artifacts.table_4 of $EXPERIMENTS (METHODS, AMOUNTS, RECOVERIES, RECIPES override it).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "table4_lora"); PLAN=1 prints them.
exec python -m orchestration.plan table4_lora "${1:-${MODEL_CONFIG:-}}"
