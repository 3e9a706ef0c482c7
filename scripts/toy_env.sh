#!/usr/bin/env bash
# The toy study's settings, sourced from the repository root after scripts/lib.sh: builds the toy model when
# missing (cached) and exports every stage's toy settings, so that any experiment script runs at toy scale,
# locally or on SLURM:
#   source scripts/setup_env.sh && source scripts/lib.sh && source scripts/toy_env.sh
#   bash scripts/figures1-4_sweep.sh toy-llama
#   bash scripts/slurm/submit.sh scripts/figures1-4_sweep.sh toy-llama --resources configs/slurm/test_cluster.yaml
# Variables: see scripts/toy_study.sh.
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error
# SEED: the toy model's seed (its weights and training order) and the study's (sampling, fine-tuning); each
# seed has its own model and results, so studies of several seeds never mix.
export SEED="${SEED:-0}"
suffix=""
[ "$SEED" = 0 ] || suffix="-seed$SEED"
# TOY_SCALE: quick (configs/experiments/toy.yaml, the default) or full (configs/experiments/toy_full.yaml:
# the paper's whole grid at toy scale).
case "${TOY_SCALE:-quick}" in
  quick) export EXPERIMENTS=configs/experiments/toy.yaml ;;
  full) export EXPERIMENTS=configs/experiments/toy_full.yaml suffix="$suffix-full" ;;
  *) die "TOY_SCALE=${TOY_SCALE}: expected quick or full" ;;
esac
export OUT="${OUT:-outputs/toy$suffix}"
MODEL_PATH="${MODEL_PATH:-$(model_field toy-llama hub_id)${suffix%-full}}"
DATA_DIR="$(python -c "from infra.paths import cache_dir; print(cache_dir() / 'toy' / 'data')")"
export MODEL_PATH

# 0. The toy model and the toy tasks' items (cached; rebuilt only when the recipe changes).
python -m infra.study_models.toy_model --output_dir "$MODEL_PATH" --seed "$SEED" ${TOY_STEPS:+--steps "$TOY_STEPS"}

# Toy settings for every stage (paper defaults otherwise: see scripts/lib.sh).
export TASKS=toy_arithmetic,toy_brackets,toy_copy CAL_TASKS=toy_arithmetic,toy_brackets,toy_copy
export CLASSIFY="${CLASSIFY:-unrecovered}" CLS_TASKS=toy_choice CLS_INCLUDE="$DATA_DIR/lm_eval" CLS_LIMIT="${CLS_LIMIT:-200}"
export CLS_FEWSHOT=0 CLS_DTYPE=float32 PROBE_DATA="$DATA_DIR/toy_probe.jsonl" GEN_BATCH="${GEN_BATCH:-50}"
export ITEMS="${ITEMS:-100}" N_ITEMS="${N_ITEMS:-20}" MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-64}"
export CAL_ITEMS="${CAL_ITEMS:-20}" CALIBRATION="$DATA_DIR/toy_arithmetic.jsonl" N_CALIBRATION=64
export TOY="$DATA_DIR/toy_instructions.jsonl" TOY_MATH="$DATA_DIR/toy_arithmetic_train.jsonl"
export PROBE_ITEMS="${PROBE_ITEMS:-200}"
export TRAIN_FLAGS="--bf16 false --bnb_4bit_compute_dtype float32 --dtype float32 --gradient_checkpointing false \
--max_length 512 --per_device_train_batch_size 8 --gradient_accumulation_steps 1 \
--learning_rate 1e-3 --warmup_steps 5 --lora_r 16 --eval_steps 10 --save_steps 50 ${TRAIN_FLAGS:-}"
