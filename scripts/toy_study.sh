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
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error
export OUT="${OUT:-outputs/toy}" EXPERIMENTS=configs/experiments/toy.yaml
MODEL_PATH="${MODEL_PATH:-$(model_field toy-llama hub_id)}"
DATA_DIR="$(python -c "from infra.paths import cache_dir; print(cache_dir() / 'toy' / 'data')")"
export MODEL_PATH

# 0. The toy model and the toy tasks' items (cached; rebuilt only when the recipe changes).
python -m infra.toy_model --output_dir "$MODEL_PATH" --steps "${TOY_STEPS:-2500}"

# Toy settings for every stage (paper defaults otherwise: see scripts/lib.sh).
export TASKS=toy_arithmetic,toy_brackets,toy_copy CAL_TASKS=toy_arithmetic,toy_brackets,toy_copy
export CLASSIFY="${CLASSIFY:-unrecovered}" CLS_TASKS=toy_choice CLS_INCLUDE="$DATA_DIR/lm_eval" CLS_LIMIT="${CLS_LIMIT:-200}"
export CLS_FEWSHOT=3 CLS_DTYPE=float32 PROBE_DATA="$DATA_DIR/toy_probe.jsonl"
export ITEMS="${ITEMS:-100}" N_ITEMS="${N_ITEMS:-30}" MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-64}"
export CAL_ITEMS="${CAL_ITEMS:-20}" CALIBRATION="$DATA_DIR/toy_arithmetic.jsonl" N_CALIBRATION=64
export TOY="$DATA_DIR/toy_instructions.jsonl" TOY_MATH="$DATA_DIR/toy_arithmetic_train.jsonl"
export PROBE_ITEMS="${PROBE_ITEMS:-200}"
export TRAIN_FLAGS="--bf16 false --bnb_4bit_compute_dtype float32 --dtype float32 --gradient_checkpointing false \
--max_length 512 --per_device_train_batch_size 8 --gradient_accumulation_steps 1 \
--learning_rate 1e-3 --warmup_steps 5 --lora_r 16 --eval_steps 10 --save_steps 50 ${TRAIN_FLAGS:-}"

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
