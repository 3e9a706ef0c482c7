#!/usr/bin/env bash
#SBATCH --job-name=figure7
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=1-23:00:00
# Figure 7: arithmetic-probe accuracy of the unpruned model (every layer ablated in turn), the 25% pruned
# models and their SGR (Dolci) recovered versions; runs of Table 2 are reused. Across models:
# python -m analysis.build_artifacts --cross_model <tree>,<tree>,... --output_dir <dir> --only figure_7.
#   bash scripts/figure7_arithmetic.sh llama-3.1-8b-instruct
#   PLAN=1 bash scripts/figure7_arithmetic.sh llama-3.1-8b-instruct   # print the stage commands only
# Grid: artifacts.figure_7 of $EXPERIMENTS (METHODS, AMOUNTS, RECOVERIES override it); ABLATE [all].
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
# The stages: orchestration/plan.py (plan "figure7_arithmetic"); PLAN=1 prints them.
exec python -m orchestration.plan figure7_arithmetic "${1:-${MODEL_CONFIG:-}}"
