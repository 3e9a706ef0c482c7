#!/usr/bin/env bash
# The embedded default: the paper's whole pipeline on CPU, on a small Llama-architecture model trained from
# scratch on toy tasks (single-digit arithmetic, bracket closing, copying), in minutes. It runs the same
# scripts as the GPU experiments, on the toy grid configs/experiments/toy.yaml:
#   prune by every method -> evaluate -> self-generate -> QLoRA with SGR and with dataset responses, LoRA,
#   full fine-tuning -> evaluate -> single-layer sweep, arithmetic probe, BI profile -> ratios, upper bound
#   -> every table and figure.
#   bash scripts/toy_study.sh
# Variables: OUT [outputs/toy], TOY_STEPS [2500] toy-model training steps, ITEMS [100] items per task,
# N_ITEMS [30] items per task and layer in the sweep, SFT_LIMIT [the grid's 300] fine-tuning examples,
# TRAIN_FLAGS (extra train.sft flags, later ones win), MODEL_PATH [.cache/models/toy-llama]; METHODS,
# AMOUNTS, RECOVERIES, RECIPES, SAMPLES narrow every grid; the rest as in scripts/lib.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
source scripts/lib.sh
source scripts/toy_env.sh

step() {  # run one experiment script, and say how long it took
  local started=$SECONDS
  env "$@"
  echo "[toy] ${*: -2:1}: $((SECONDS - started)) s"
}
for script in table1_pruning table2_recovery table4_lora table6_ratios figure14_sgr_vs_sft figures1-4_sweep \
  figure5_perplexity figure7_arithmetic figure8_code upper_bound figure12_full_ft; do
  step bash "scripts/$script.sh" toy-llama
done

RESULTS="$OUT/toy-llama"
# shellcheck disable=SC2046
python -m analysis.build_artifacts --results "$RESULTS" --output_dir "$RESULTS/artifacts" --experiments "$EXPERIMENTS" \
  $(narrow_flags)
echo "[toy] done: results in $RESULTS, tables and figures in $RESULTS/artifacts"
