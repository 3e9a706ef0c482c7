#!/usr/bin/env bash
#SBATCH --job-name=prune-25
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=24:00:00
# The paper's 25% pruned models (8 of 32 layers for the 7-8B models) by reverse order, block influence and
# greedy iterative search.
#   bash scripts/prune_25.sh llama-3.1-8b-instruct            # or: sbatch scripts/prune_25.sh <model config>
# Variables: OUT (default outputs), METHODS (default "reverse bi iterative"), EXTRA (more prune flags, e.g.
# "--data gsm8k=/data/gsm8k/test.jsonl" on nodes without internet).
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh

MODEL_CONFIG="${1:-${MODEL_CONFIG:-}}"
require_model_config "$MODEL_CONFIG"
MODEL="$(model_field "$MODEL_CONFIG" hub_id)"
OUT="${OUT:-outputs}/$MODEL_CONFIG"
for method in ${METHODS:-reverse bi iterative}; do
  target="$OUT/$method-25"
  if stage_done "$target"; then echo "[skip] $target is complete"; continue; fi
  python -m layer_pruner.prune --model "$MODEL" --method "$method" --ratio 0.25 --output_dir "$target" \
    --model_config "$MODEL_CONFIG" --overwrite ${EXTRA:-}
done
