#!/usr/bin/env bash
#SBATCH --job-name=figure12
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=16
#SBATCH --mem=128G
#SBATCH --time=48:00:00
# Figure 12: QLoRA against full fine-tuning of the BI-pruned model on the same self-generated data.
#   bash scripts/figure12_full_ft.sh llama-3.1-8b-instruct
# Variables: METHOD [bi], DATASET [alpaca], FULL_LAUNCH [python] (e.g. "accelerate launch --config_file
# configs/accelerate/deepspeed_zero3.yaml"), and scripts/lib.sh's.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh
init_study "${1:-${MODEL_CONFIG:-}}"
method="${METHOD:-bi}" dataset="${DATASET:-alpaca}"
require_datasets "$dataset"

run_prune "$method" 25pct
self_generate "$dataset"
for recipe in qlora full; do
  run="$RESULTS/full_ft/$recipe"
  if stage_done "$run/train"; then echo "[skip] $run/train"; else
    launcher="python"; [ "$recipe" = full ] && launcher="${FULL_LAUNCH:-python}"
    # shellcheck disable=SC2086
    $launcher -m train.sft --recipe "$recipe" --model "$RESULTS/pruned/$method-25pct/model" \
      --model_config "$MODEL_CONFIG" --data "$RESULTS/data/$dataset.sgr.jsonl" --output_dir "$run/train" \
      ${TRAIN_FLAGS:-}
  fi
done
run_eval "$RESULTS/full_ft/qlora" "$RESULTS/pruned/$method-25pct/model" "$RESULTS/full_ft/qlora/train/adapter"
run_eval "$RESULTS/full_ft/full" "$RESULTS/full_ft/full/train/model"
build figure_12
