#!/usr/bin/env bash
#SBATCH --job-name=figure14
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=29-05:00:00
# Figure 14: SGR against the dataset's own responses (Dolci) at each pruning amount, per method (the paper
# draws Qwen). Runs shared with Table 6 are reused.
#   bash scripts/figure14_sgr_vs_sft.sh qwen2.5-7b-instruct
#   PLAN=1 bash scripts/figure14_sgr_vs_sft.sh qwen2.5-7b-instruct   # print the stage commands only
# Grid: artifacts.figure_14 of $EXPERIMENTS (METHODS, AMOUNTS, RECOVERIES override it).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "figure14_sgr_vs_sft"); PLAN=1 prints them.
exec python -m orchestration.plan figure14_sgr_vs_sft "${1:-${MODEL_CONFIG:-}}"
