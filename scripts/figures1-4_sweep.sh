#!/usr/bin/env bash
#SBATCH --job-name=sweep
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=24:00:00
# Figures 1-4: remove each layer alone (layers 1..L-1 of the model config) and record the task scores and
# responses (Figure 1), their degeneration (Figure 2), the arithmetic probe per ablated layer (Figure 3) and
# the code outcomes (Figure 4).
#   bash scripts/figures1-4_sweep.sh llama-3.1-8b-instruct       # every layer in one job (one engine)
#   bash scripts/slurm/submit.sh scripts/figures1-4_sweep.sh llama-3.1-8b-instruct   # SLURM: one array task
#   per layer (L-1 tasks: 31 for Llama, 27 for Qwen, 25 for Gemma), then the collecting run and the figures.
#   sbatch --array=1-31 scripts/figures1-4_sweep.sh llama-3.1-8b-instruct   # the same array by hand; then
#   run it once more without an array to collect and draw.
#   PLAN=1 bash scripts/figures1-4_sweep.sh llama-3.1-8b-instruct   # print the stage commands only
# Variables: N_ITEMS [registry: 100] items per task per layer, SWEEP_LAYERS [1..L-1] the layers removed (a
# comma list), and scripts/lib.sh's.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh
init_study "${1:-${MODEL_CONFIG:-}}"

layers="${SWEEP_LAYERS:-$(seq -s, 1 $((NUM_LAYERS - 1)))}"
[ -n "${SLURM_ARRAY_TASK_ID:-}" ] && layers="$SLURM_ARRAY_TASK_ID"
if dir_pending "$RESULTS/sweep"; then
  stage python -m layer_pruner.sweep --model "$MODEL" --model_config "$MODEL_CONFIG" \
    --output_dir "$RESULTS/sweep" --dtype "$DTYPE" --layers "$layers" --tasks "${CAL_TASKS:-gsm8k,humaneval,xsum}" \
    ${N_ITEMS:+--n_items "$N_ITEMS"} --max_new_tokens "${MAX_NEW_TOKENS:-8192}" --backend "${BACKEND:-auto}" \
    "${TASK_DATA_FLAGS[@]}"
fi
if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then exit 0; fi
run_probe base "$MODEL" "" all
if dir_pending "$RESULTS/bi_profile"; then
  stage python -m analysis.bi_profile --model "$MODEL" --output_dir "$RESULTS/bi_profile" --dtype "$DTYPE" \
    --calibration "${CALIBRATION:-openai/gsm8k}" --n_calibration "${N_CALIBRATION:-100}"
fi
build figure_1,figure_2,figure_3,figure_4,figure_bi_profile
