#!/usr/bin/env bash
#SBATCH --job-name=figure5
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=3-06:00:00
# Figure 5: training perplexity (per 10 steps, as the original logged it) and held-out perplexity during
# recovery fine-tuning, SGR against dataset responses (Dolci by default; finished runs of Table 2 are reused).
#   bash scripts/figure5_perplexity.sh llama-3.1-8b-instruct
#   PLAN=1 bash scripts/figure5_perplexity.sh llama-3.1-8b-instruct   # print the stage commands only
# Grid: artifacts.figure_5 of $EXPERIMENTS (METHODS, AMOUNTS, RECOVERIES override it).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "figure5_perplexity"); PLAN=1 prints them.
exec python -m orchestration.plan figure5_perplexity "${1:-${MODEL_CONFIG:-}}"
