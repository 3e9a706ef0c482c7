#!/usr/bin/env bash
#SBATCH --job-name=table1-pruning
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=48:00:00
# Tables 1 and 3: retention after 25% pruning (8 of 32 layers for the 7-8B models) without recovery, by
# reverse order, block influence and the greedy iterative search; generative and classification tasks.
#   bash scripts/table1_pruning.sh llama-3.1-8b-instruct        # or: sbatch scripts/table1_pruning.sh <model config>
# Variables: METHODS [reverse bi iterative], AMOUNT [25pct], and those of scripts/lib.sh.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh
init_study "${1:-${MODEL_CONFIG:-}}"

run_eval "$RESULTS/base" "$MODEL"
for method in ${METHODS:-reverse bi iterative}; do
  run_prune "$method" "${AMOUNT:-25pct}"
  run_eval "$RESULTS/pruned/$method-${AMOUNT:-25pct}" "$RESULTS/pruned/$method-${AMOUNT:-25pct}/model"
done
build table_1
