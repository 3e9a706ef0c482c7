#!/usr/bin/env bash
#SBATCH --job-name=figure7
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=48:00:00
# Figure 7: arithmetic-probe accuracy of the unpruned model, the 25% pruned models and their recovered
# versions (recovery runs of Table 2 are reused or run).
#   bash scripts/figure7_arithmetic.sh llama-3.1-8b-instruct
# Variables: METHODS [reverse bi iterative], DATASETS [alpaca], RECOVERIES [sft sgr], and scripts/lib.sh's.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh
init_study "${1:-${MODEL_CONFIG:-}}"
# shellcheck disable=SC2086
require_datasets ${DATASETS:-alpaca}

run_probe base "$MODEL" "" "${ABLATE:-all}"
for method in ${METHODS:-reverse bi iterative}; do
  run_prune "$method" 25pct
  run_probe "$method-25pct" "$RESULTS/pruned/$method-25pct/model"
  for dataset in ${DATASETS:-alpaca}; do
    for recovery in ${RECOVERIES:-sft sgr}; do
      run_recovery "$method" 25pct "$recovery" "$dataset"
      name="$method-25pct-$recovery-$dataset"
      run_probe "$name" "$RESULTS/pruned/$method-25pct/model" "$RESULTS/recovered/$name/train/adapter"
    done
  done
done
build figure_7
