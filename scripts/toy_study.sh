#!/usr/bin/env bash
# The embedded default: the pipeline's stages end to end on a tiny model, on CPU, in minutes.
#   bash scripts/toy_study.sh
# Variables: OUT (default outputs/toy), DATA (default ../shared/data), ITEMS (items per task, default 8).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
source scripts/lib.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT="${OUT:-outputs/toy}"
DATA="${DATA:-../shared/data}"
ITEMS="${ITEMS:-8}"
MODEL_CONFIG=tiny-llama
MODEL="$(model_field "$MODEL_CONFIG" hub_id)"
require_file "$DATA/gsm8k/test.jsonl" "GSM8K test split; set DATA to the folder holding gsm8k/, humaneval/, mbppplus/"
require_file "$DATA/humaneval/HumanEval.jsonl.gz" "HumanEval"
require_file "$DATA/mbppplus/MbppPlus.jsonl" "MBPP+"
TASK_DATA=(--data "gsm8k=$DATA/gsm8k/test.jsonl" --data "humaneval=$DATA/humaneval/HumanEval.jsonl.gz"
           --data "mbpp=$DATA/mbppplus/MbppPlus.jsonl")
GEN=(--max_new_tokens 48 --batch_size 8)

if [ ! -f "$MODEL/config.json" ]; then
  python -m infra.tiny_models --arch llama --num_layers 8 --output_dir "$MODEL"
fi

# 1. Prune 25% (2 of 8 layers) by each method.
for method in reverse bi angular iterative; do
  target="$OUT/pruned/$method-25"
  if stage_done "$target"; then echo "[skip] $target"; continue; fi
  python -m layer_pruner.prune --model "$MODEL" --method "$method" --ratio 0.25 --output_dir "$target" \
    --calibration "$DATA/gsm8k/test.jsonl" --n_calibration 32 --model_config "$MODEL_CONFIG" \
    --tasks gsm8k,humaneval --n_items 4 --max_new_tokens 16 "${TASK_DATA[@]}" --overwrite
done

# 2. Evaluate the unpruned and the pruned models.
evaluate() {  # name model
  local target="$OUT/eval/$1"
  if stage_done "$target"; then echo "[skip] $target"; return; fi
  python -m eval.generative --model "$2" --model_config "$MODEL_CONFIG" --tasks gsm8k,humaneval,mbpp \
    --limit "$ITEMS" "${TASK_DATA[@]}" "${GEN[@]}" --output_dir "$target"
}
evaluate base "$MODEL"
for method in reverse bi angular iterative; do evaluate "$method-25" "$OUT/pruned/$method-25"; done

# 3. Retention table.
python -m eval.retention --baseline "$OUT/eval/base" \
  --runs "$OUT/eval/reverse-25" "$OUT/eval/bi-25" "$OUT/eval/angular-25" "$OUT/eval/iterative-25" \
  --output "$OUT/tables/retention.md"
echo "[toy] done: pruned models in $OUT/pruned, results in $OUT/eval, table in $OUT/tables/retention.md"
