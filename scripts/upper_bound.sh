#!/usr/bin/env bash
#SBATCH --job-name=upper-bound
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=48:00:00
# GSM8K upper bound (appendix A.6.2, Figure 11): recover the BI-pruned model on self-generated answers to
# the GSM8K training questions, one sample per question against eight, and evaluate on GSM8K.
#   bash scripts/upper_bound.sh llama-3.1-8b-instruct
# Variables: GSM8K_TRAIN [openai/gsm8k train split via ../shared/data/gsm8k/train.jsonl], METHOD [bi],
# SAMPLES [1 8], and scripts/lib.sh's.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh
init_study "${1:-${MODEL_CONFIG:-}}"
export GSM8K="${GSM8K_TRAIN:-../shared/data/gsm8k/train.jsonl}"
case "$GSM8K" in */*) require_file "$GSM8K" "GSM8K training questions; set GSM8K_TRAIN" ;; esac
TASKS="${UPPER_BOUND_TASKS:-gsm8k}"
method="${METHOD:-bi}"

run_eval "$RESULTS/base" "$MODEL"
run_prune "$method" 25pct
for n in ${SAMPLES:-1 8}; do
  self_generate gsm8k "$n"
  data="$RESULTS/data/gsm8k.sgr.jsonl"; [ "$n" != 1 ] && data="$RESULTS/data/gsm8k.sgr$n.jsonl"
  run="$RESULTS/upper_bound/sgr-${n}sample"
  if stage_done "$run/train"; then echo "[skip] $run/train"; else
    # shellcheck disable=SC2086
    python -m train.sft --recipe "${RECIPE:-qlora}" --model "$RESULTS/pruned/$method-25pct/model" \
      --model_config "$MODEL_CONFIG" --data "$data" --output_dir "$run/train" ${TRAIN_FLAGS:-}
  fi
  CLASSIFY=0 run_eval "$run" "$RESULTS/pruned/$method-25pct/model" "$run/train/adapter"
done
build table_upper_bound
