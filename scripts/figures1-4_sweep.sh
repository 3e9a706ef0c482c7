#!/usr/bin/env bash
#SBATCH --job-name=sweep
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=24:00:00
#SBATCH --array=0-31
# Figures 1-4: remove each layer alone and record the task scores and responses (Figure 1), their
# degeneration (Figure 2), the arithmetic probe per ablated layer (Figure 3) and the code outcomes (Figure 4).
#   bash scripts/figures1-4_sweep.sh llama-3.1-8b-instruct       # every layer in one job
#   sbatch --array=0-31 scripts/figures1-4_sweep.sh llama-3.1-8b-instruct   # one layer per array task;
#   then run it once more without an array to collect and draw (finished layers are skipped).
# Variables: N_ITEMS [100] items per task per layer, and scripts/lib.sh's.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh
init_study "${1:-${MODEL_CONFIG:-}}"

layer_flags=()
[ -n "${SLURM_ARRAY_TASK_ID:-}" ] && layer_flags=(--layer "$SLURM_ARRAY_TASK_ID")
python -m layer_pruner.sweep --model "$MODEL" --model_config "$MODEL_CONFIG" --output_dir "$RESULTS/sweep" \
  --tasks "${CAL_TASKS:-gsm8k,humaneval,xsum}" --n_items "${N_ITEMS:-100}" \
  --max_new_tokens "${MAX_NEW_TOKENS:-8192}" --backend "${BACKEND:-auto}" "${TASK_DATA_FLAGS[@]}" "${layer_flags[@]}"
if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then exit 0; fi
run_probe base "$MODEL" "" all
run_prune_profile() {
  local target="$RESULTS/bi_profile"
  if stage_done "$target"; then echo "[skip] $target"; return; fi
  python -m analysis.bi_profile --model "$MODEL" --output_dir "$target" \
    --calibration "${CALIBRATION:-openai/gsm8k}" --n_calibration "${N_CALIBRATION:-100}"
}
run_prune_profile
build figure_1,figure_2,figure_3,figure_4,figure_bi_profile
