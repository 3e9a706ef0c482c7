#!/usr/bin/env bash
# The embedded default: the paper's whole pipeline on CPU, on a small Llama-architecture model trained from
# scratch on toy tasks (single-digit arithmetic, bracket closing, copying), in minutes. It runs the same
# scripts as the GPU experiments, with toy settings:
#   prune 25% by every method -> evaluate -> self-generate -> QLoRA with SGR and with dataset responses ->
#   evaluate -> single-layer sweep, arithmetic probe, BI profile -> ratios, upper bound, QLoRA vs full ->
#   every table and figure.
#   bash scripts/toy_study.sh
# Variables: OUT [outputs/toy], TOY_STEPS [1500] toy-model training steps, ITEMS [100] items per task,
# N_ITEMS [30] items per task and layer in the sweep, SFT_LIMIT [300] fine-tuning examples, TRAIN_FLAGS
# (extra train.sft flags, later ones win), MODEL_PATH [.cache/models/toy-llama], TOY_PRUNE_METHODS
# [reverse bi angular iterative], TOY_METHODS [reverse bi iterative] (recovery), TOY_AMOUNTS [1layers
# 2layers 3layers], TOY_SAMPLES [1 4] (upper bound); the rest as in scripts/lib.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
source scripts/lib.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error
export OUT="${OUT:-outputs/toy}"
MODEL_PATH="${MODEL_PATH:-$(model_field toy-llama hub_id)}"
DATA_DIR="$(python -c "from infra.paths import cache_dir; print(cache_dir() / 'toy' / 'data')")"
export MODEL_PATH

# 0. The toy model and the toy tasks' items (cached; rebuilt only when the recipe changes).
python -m infra.toy_model --output_dir "$MODEL_PATH" --steps "${TOY_STEPS:-1500}"

# Toy settings for every stage (paper defaults otherwise: see scripts/lib.sh).
export TASKS=toy_arithmetic,toy_brackets,toy_copy CAL_TASKS=toy_arithmetic,toy_brackets,toy_copy
export CLASSIFY=0 ITEMS="${ITEMS:-100}" N_ITEMS="${N_ITEMS:-30}" MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-64}"
export CAL_ITEMS="${CAL_ITEMS:-20}" CALIBRATION="$DATA_DIR/toy_arithmetic.jsonl" N_CALIBRATION=64
export DATASETS=toy TOY="$DATA_DIR/toy_instructions.jsonl" SFT_LIMIT="${SFT_LIMIT:-300}" SFT_MAX_LENGTH=512
export GSM8K_TRAIN="$DATA_DIR/toy_arithmetic_train.jsonl" UPPER_BOUND_TASKS=toy_arithmetic
export PROBE_ITEMS="${PROBE_ITEMS:-200}" DATASET=toy
export TRAIN_FLAGS="--bf16 false --bnb_4bit_compute_dtype float32 --dtype float32 --gradient_checkpointing false \
--max_length 512 --num_train_epochs 2 --per_device_train_batch_size 8 --gradient_accumulation_steps 1 \
--learning_rate 1e-3 --warmup_steps 5 --lora_r 16 --eval_steps 10 --save_steps 50 ${TRAIN_FLAGS:-}"

step() {  # run one experiment script, and say how long it took
  local started=$SECONDS
  env "$@"
  echo "[toy] ${*: -2:1}: $((SECONDS - started)) s"
}
PRUNE_METHODS="${TOY_PRUNE_METHODS:-reverse bi angular iterative}"
RECOVERY_METHODS="${TOY_METHODS:-reverse bi iterative}"
step METHODS="$PRUNE_METHODS" bash scripts/table1_pruning.sh toy-llama
step METHODS="$RECOVERY_METHODS" bash scripts/table2_recovery.sh toy-llama
step METHODS="$RECOVERY_METHODS" AMOUNTS="${TOY_AMOUNTS:-1layers 2layers 3layers}" bash scripts/table6_ratios.sh toy-llama
step bash scripts/figures1-4_sweep.sh toy-llama
step METHODS="$RECOVERY_METHODS" bash scripts/figure7_arithmetic.sh toy-llama
step METHODS="$RECOVERY_METHODS" bash scripts/figure8_code.sh toy-llama
step SAMPLES="${TOY_SAMPLES:-1 4}" bash scripts/upper_bound.sh toy-llama
step bash scripts/figure12_full_ft.sh toy-llama

RESULTS="$OUT/toy-llama"
python -m analysis.build_artifacts --results "$RESULTS" --output_dir "$RESULTS/artifacts"
echo "[toy] done: results in $RESULTS, tables and figures in $RESULTS/artifacts"
