#!/usr/bin/env bash
#SBATCH --job-name=figure8
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=1-23:00:00
# Figure 8: how the generated programs fail (HumanEval+ and MBPP+) for the unpruned model and the 25%
# pruned models after SGR (Dolci) recovery, from their evaluation item files (runs of Table 2 are reused).
#   bash scripts/figure8_code.sh llama-3.1-8b-instruct
#   PLAN=1 bash scripts/figure8_code.sh llama-3.1-8b-instruct   # print the stage commands only
# Grid: artifacts.figure_8 of $EXPERIMENTS (METHODS, AMOUNTS, RECOVERIES override it).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "figure8_code"); PLAN=1 prints them.
exec python -m orchestration.plan figure8_code "${1:-${MODEL_CONFIG:-}}"
