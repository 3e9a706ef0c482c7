#!/usr/bin/env bash
# The embedded default: the paper's whole pipeline on CPU, on a small Llama-architecture model trained from
# scratch on toy tasks (single-digit arithmetic, bracket closing, copying, and summary recognition as the
# classification task), in about 13 minutes on 2 cores, model training included. It runs the same scripts as
# the GPU experiments, on the toy grid configs/experiments/toy.yaml:
#   prune by every method -> evaluate -> self-generate -> LoRA with SGR and with dataset responses, QLoRA,
#   full fine-tuning -> evaluate -> single-layer sweep, arithmetic probe, BI profile -> ratios, upper bound
#   -> every table and figure, and the paper's findings tested with their intervals (findings.json).
#   bash scripts/toy_study.sh
#   SEED=1 bash scripts/toy_study.sh            # another toy model and study seed: outputs/toy-seed1
#   TOY_SCALE=full bash scripts/toy_study.sh    # the whole paper grid (configs/experiments/toy_full.yaml)
#   TWIN=real bash scripts/toy_study.sh         # the real-model twin: SmolLM2-135M-Instruct, pretrained, on
#   the toy tasks (configs/experiments/real.yaml, scripts/real_env.sh), in outputs/real(-seed<SEED>)
#   TWIN=real REAL_SCALE=ci bash scripts/toy_study.sh   # its reduced run (the test suite's)
# Variables: SEED [0], TOY_SCALE [quick], OUT [outputs/toy, outputs/toy-seed<SEED>, ...-full], TOY_STEPS
# [the toy model's default] training steps, ITEMS [100] items per task, N_ITEMS [20] items per task and
# layer in the sweep, SFT_LIMIT [the grid's 300] fine-tuning examples, TRAIN_FLAGS (extra train.sft flags,
# later ones win), MODEL_PATH [.cache/models/toy-llama(-seed<SEED>)]; METHODS, AMOUNTS, RECOVERIES, RECIPES,
# SAMPLES narrow every grid; JOBS [2] scripts side by side (1: one after the other); the rest as in
# scripts/lib.sh. TWIN=real: SEED [0] the study's seed (sampling, fine-tuning, the probe's items; one model),
# REAL_SCALE [full] (ci: fewer items, tokens and swept layers), OUT [outputs/real(-seed<SEED>)(-ci)].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
source scripts/lib.sh
case "${TWIN:-toy}" in
  toy) source scripts/toy_env.sh; STUDY_MODEL=toy-llama ;;
  real) source scripts/real_env.sh; STUDY_MODEL=smollm2-135m-instruct ;;
  *) die "TWIN=${TWIN}: expected toy (the model trained here) or real (SmolLM2-135M-Instruct)" ;;
esac
echo "[toy] $STUDY_MODEL ready after $SECONDS s"

step() {  # run one experiment script ([VAR=value ...] bash <script>), and say how long it took
  local started=$SECONDS
  env BUILD=0 "$@" "$STUDY_MODEL"
  echo "[toy] $*: $((SECONDS - started)) s"
}

# side_by_side <command> <command>: two commands (functions of this script) in two processes with one thread
# each (a toy model gains little from a second thread); fails when either fails. JOBS=1: one after the other.
side_by_side() {
  if [ "${JOBS:-2}" = 1 ]; then "$1"; "$2"; return; fi
  (export OMP_NUM_THREADS=1; $1) &
  local first=$!
  (export OMP_NUM_THREADS=1; $2) &
  local second=$! failed=0
  wait "$first" || failed=1
  wait "$second" || failed=1
  [ "$failed" = 0 ] || die "a toy-study stage failed (its error is above; a rerun resumes)"
}

# What several scripts share is made first (plans of orchestration/plan.py): the unpruned model's scores and
# (toy) its greedy mastery of the tasks, which the study itself samples at the paper's 0.9, or (real) its
# responses on one side; its arithmetic probe with every layer ablated in turn, after (toy) its responses, on
# the other (the real model's probe over 30 layers is a side's work on its own).
export SGR_DATASET=toy
base_scores() {
  plan base_scores "$STUDY_MODEL"
  if [ "$STUDY_MODEL" = toy-llama ]; then plan base_greedy "$STUDY_MODEL"; else plan base_responses "$STUDY_MODEL"; fi
}
base_responses() {
  [ "$STUDY_MODEL" != toy-llama ] || plan base_responses "$STUDY_MODEL"
  plan base_probe "$STUDY_MODEL"
}
side_by_side base_scores base_responses
echo "[toy] shared stages done after $SECONDS s"

# Then the experiment scripts, side by side as well: each side runs every script for its share of the pruning
# methods (SPLIT_METHODS), so no stage is in both; the scripts without a method of the grids (the sweep, the
# upper bound) go one to each side. The real model's grid has only Tables 1-2 and Figure 7 and its recovery
# runs (the longest stages) are on BI pruning: BI on one side, reverse and angular on the other; its sweep
# (about 15 s a layer) is shared, the first 30% of the layers scored after BI (plan sweep_layers), the rest
# by the sweep script after reverse and angular.
if [ "$STUDY_MODEL" = toy-llama ]; then
  method_scripts=(table1_pruning table2_recovery table4_lora table6_ratios figure14_sgr_vs_sft figure5_perplexity
    figure7_arithmetic figure8_code figure12_full_ft)
  first_methods="bi" first_other=figures1-4_sweep second_methods="reverse angular iterative" second_other=upper_bound
else
  method_scripts=(table1_pruning table2_recovery figure7_arithmetic)
  first_methods="bi" first_other="" second_methods="reverse angular iterative" second_other=figures1-4_sweep
  IFS=, read -r -a layers <<< "${SWEEP_LAYERS:-$(seq -s, 1 $(($(model_field "$STUDY_MODEL" num_layers) - 1)))}"
  first_count=$((${#layers[@]} * 3 / 10))
  first_layers="$(IFS=,; echo "${layers[*]:0:first_count}")" second_layers="$(IFS=,; echo "${layers[*]:first_count}")"
fi
share() {  # share <methods> [script without methods]: one side's scripts
  local script
  for script in "${method_scripts[@]}"; do step SPLIT_METHODS="$1" bash "scripts/$script.sh"; done
  [ -z "${2:-}" ] || step ${second_layers:+SWEEP_LAYERS="$second_layers"} bash "scripts/$2.sh"
}
first_share() {
  share "$first_methods" "$first_other"
  [ -z "${first_layers:-}" ] || step SWEEP_LAYERS="$first_layers" python -m orchestration.plan sweep_layers
}
second_share() { share "$second_methods" "$second_other"; }
side_by_side first_share second_share

BUILD=1 plan artifacts "$STUDY_MODEL"
echo "[toy] done in $SECONDS s (seed $SEED): results in $OUT/$STUDY_MODEL, tables and figures in $OUT/$STUDY_MODEL/artifacts"
