#!/usr/bin/env bash
#SBATCH --job-name=figure5
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=48:00:00
# Figure 5: held-out perplexity during recovery fine-tuning, SGR against dataset responses (the training
# runs of Table 2; finished runs are reused).
#   bash scripts/figure5_perplexity.sh llama-3.1-8b-instruct
# Variables: METHODS [bi], DATASETS [alpaca], and scripts/lib.sh's.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh
init_study "${1:-${MODEL_CONFIG:-}}"
# shellcheck disable=SC2086
require_datasets ${DATASETS:-alpaca}

for method in ${METHODS:-bi}; do
  for dataset in ${DATASETS:-alpaca}; do
    for recovery in sft sgr; do run_recovery "$method" 25pct "$recovery" "$dataset"; done
  done
done
build figure_5
