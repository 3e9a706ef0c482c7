#!/usr/bin/env bash
#SBATCH --job-name=table2-recovery
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=72:00:00
# Tables 2 and 5 (and the curves of Figure 5): 25% pruning x {reverse, BI, iterative} x {Alpaca, Dolci} x
# {dataset responses (SFT), self-generated responses (SGR)}, QLoRA recovery, then evaluation.
#   DOLCI=allenai/<dolci sft mix> bash scripts/table2_recovery.sh llama-3.1-8b-instruct
# Variables: METHODS [reverse bi iterative], DATASETS [alpaca dolci], RECOVERIES [sft sgr], and scripts/lib.sh's.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh
init_study "${1:-${MODEL_CONFIG:-}}"
# shellcheck disable=SC2086
require_datasets ${DATASETS:-alpaca dolci}

run_eval "$RESULTS/base" "$MODEL"
for method in ${METHODS:-reverse bi iterative}; do
  run_prune "$method" 25pct
  run_eval "$RESULTS/pruned/$method-25pct" "$RESULTS/pruned/$method-25pct/model"
  for dataset in ${DATASETS:-alpaca dolci}; do
    for recovery in ${RECOVERIES:-sft sgr}; do
      run_recovery "$method" 25pct "$recovery" "$dataset"
    done
  done
done
build table_2,figure_5
