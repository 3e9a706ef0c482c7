#!/usr/bin/env bash
#SBATCH --job-name=upper-bound
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=16
#SBATCH --mem=256G
#SBATCH --time=72:00:00
# GSM8K upper bound (appendix A.6.2, Figure 11): prune by the iterative search scored on GSM8K alone, then
# fine-tune on the unpruned model's answers to the GSM8K training questions (8 per question, 2 epochs),
# QLoRA and full fine-tuning, and evaluate on GSM8K test. Full fine-tuning: see FULL_LAUNCH in scripts/lib.sh.
#   bash scripts/upper_bound.sh qwen2.5-7b-instruct
#   PLAN=1 bash scripts/upper_bound.sh qwen2.5-7b-instruct   # print the stage commands only
# Settings: upper_bound of $EXPERIMENTS. Variables: GSM8K_TRAIN (a local copy of the training questions,
# e.g. tests/data/gsm8k/train.jsonl.gz), UPPER_BOUND_TASKS, UPPER_BOUND_SEARCH_TASKS, SAMPLES, RECIPES.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
source scripts/lib.sh
init_study "${1:-${MODEL_CONFIG:-}}"
method="$(exp upper_bound.method)" amount="$(exp upper_bound.amount)" dataset="$(exp upper_bound.dataset)"
samples="${SAMPLES:-$(exp upper_bound.samples)}" recipes="${RECIPES:-$(exp upper_bound.recipes)}"
search_tasks="${UPPER_BOUND_SEARCH_TASKS:-$(exp upper_bound.search_tasks | tr ' ' ,)}"
if [ -n "${GSM8K_TRAIN:-}" ]; then export "$(dataset_var "$dataset")=$GSM8K_TRAIN"; fi
require_datasets "$dataset"
TASKS="${UPPER_BOUND_TASKS:-$(exp upper_bound.tasks | tr ' ' ,)}" CLASSIFY=0
pruned="$RESULTS/upper_bound/pruned"

run_eval "$RESULTS/base" "$MODEL"
CAL_TASKS="$search_tasks" run_prune "$method" "$amount" "$pruned/model"
run_eval "$pruned" "$pruned/model"
self_generate "$dataset" "$samples"
data="$RESULTS/data/$dataset.sgr.jsonl"; [ "$samples" != 1 ] && data="$RESULTS/data/$dataset.sgr$samples.jsonl"
for recipe in $recipes; do
  run="$RESULTS/upper_bound/sgr$samples-$recipe"
  fine_tune "$recipe" "$pruned/model" "$data" "$run/train" "$dataset"
  eval_trained "$run" "$pruned/model" "$recipe"
done
build table_upper_bound,figure_11
