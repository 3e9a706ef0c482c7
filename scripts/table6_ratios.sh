#!/usr/bin/env bash
#SBATCH --job-name=table6-ratios
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=72:00:00
# Table 6 and Figure 6: retention at each pruning amount (2 layers, 10%, 15%, 25%) per method, no recovery.
#   bash scripts/table6_ratios.sh llama-3.1-8b-instruct
# Variables: METHODS [reverse bi iterative], AMOUNTS [2layers 10pct 15pct 25pct], and scripts/lib.sh's.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh
init_study "${1:-${MODEL_CONFIG:-}}"

run_eval "$RESULTS/base" "$MODEL"
for method in ${METHODS:-reverse bi iterative}; do
  for amount in ${AMOUNTS:-2layers 10pct 15pct 25pct}; do
    run_prune "$method" "$amount"
    run_eval "$RESULTS/pruned/$method-$amount" "$RESULTS/pruned/$method-$amount/model"
  done
done
build table_6,figure_6
