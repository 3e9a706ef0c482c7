#!/usr/bin/env bash
# Stages shared by the experiment scripts. Each stage is skipped when its output is complete (a manifest is
# present), so rerunning a script resumes it. Results follow analysis/layout.py under $RESULTS.
#
# Variables (paper defaults in brackets):
#   OUT [outputs]            results root; one model's results go to $OUT/<model config>
#   MODEL_PATH [the config's hub_id]    where the unpruned model is read from
#   TASKS [gsm8k,humaneval,mbpp,xsum]   generative tasks evaluated
#   TASK_DATA []             extra eval flags for local task files, e.g. "--data gsm8k=/data/gsm8k.jsonl"
#   ITEMS [1000]             items per generative task;  MAX_NEW_TOKENS [8192];  BACKEND [auto]: vllm on GPU nodes, else hf
#   CLASSIFY [1]             also run the lm-eval classification tasks (CLS_TASKS, CLS_LIMIT [0.2], CLS_INCLUDE)
#   CAL_TASKS [gsm8k,humaneval,xsum], CAL_ITEMS [100]    the iterative search's and the sweep's tasks
#   CALIBRATION [openai/gsm8k], N_CALIBRATION [100]      BI / angular calibration texts
#   DATASETS [alpaca dolci]; ALPACA [yahma/alpaca-cleaned]; DOLCI (required when used); <NAME> for others
#   SFT_LIMIT [20000]        examples per fine-tuning dataset;  SFT_MAX_LENGTH [8192]
#   RECIPE [qlora];  TRAIN_FLAGS []  extra train.sft flags (e.g. "--num_train_epochs 1")
#   PROBE_ITEMS [200];  PROBE_DATA [../shared/data/arithmetic/single_digit_three_ops.jsonl]

die() { echo "error: $*" >&2; exit 2; }

require_model_config() {
  local name="${1:-}"
  if [ -z "$name" ]; then
    die "give a model config name (one of: $(ls configs/models | sed 's/\.yaml$//' | tr '\n' ' '))"
  fi
  [ -f "configs/models/$name.yaml" ] || die "configs/models/$name.yaml: no such model config"
  python -c "from infra.model_spec import load_model_spec; load_model_spec('$name')" ||
    die "configs/models/$name.yaml is not a valid model config"
}

model_field() {
  python -c "from infra.model_spec import load_model_spec; print(load_model_spec('$1').$2)"
}

require_file() {
  [ -e "$1" ] || die "missing input $1${2:+ ($2)}"
}

require_var() {  # name, what it is
  [ -n "${!1:-}" ] || die "set $1: $2"
}

dataset_var() { echo "$1" | tr '[:lower:]-' '[:upper:]_'; }

# require_datasets <names...>: each fine-tuning dataset is named by its variable; local files must exist.
dataset_source() {  # the hub id or file a dataset name stands for (empty when its variable is unset)
  local var
  var="$(dataset_var "$1")"
  if [ "$1" = alpaca ]; then echo "${ALPACA:-yahma/alpaca-cleaned}"; else echo "${!var:-}"; fi
}

require_datasets() {
  local name source
  for name in "$@"; do
    source="$(dataset_source "$name")"
    [ -n "$source" ] || require_var "$(dataset_var "$name")" "the $name fine-tuning dataset (hub id or local file)"
    case "$source" in *.jsonl|*.json|*.parquet|*.gz) require_file "$source" "$(dataset_var "$name")" ;; esac
  done
}

# A stage's output directory is complete when its manifest.json is present; a file output when
# <file>.manifest.json is.
stage_done() { [ -f "$1/manifest.json" ]; }
file_done() { [ -f "$1.manifest.json" ]; }

# init_study <model config>: sets MODEL_CONFIG, MODEL, NUM_LAYERS, RESULTS and the stage settings.
init_study() {
  require_model_config "${1:-}"
  MODEL_CONFIG="$1"
  MODEL="${MODEL_PATH:-$(model_field "$MODEL_CONFIG" hub_id)}"  # MODEL_PATH: a local copy (offline nodes)
  case "$MODEL" in
    /*|./*|../*|.cache/*|outputs/*) [ -f "$MODEL/config.json" ] ||
      die "missing model directory $MODEL (model config $MODEL_CONFIG; set MODEL_PATH, or build the toy model with python -m infra.toy_model)" ;;
  esac
  NUM_LAYERS="$(model_field "$MODEL_CONFIG" num_layers)"
  RESULTS="${OUT:-outputs}/$MODEL_CONFIG"
  TASKS="${TASKS:-gsm8k,humaneval,mbpp,xsum}"
  read -r -a TASK_DATA_FLAGS <<< "${TASK_DATA:-}"
  mkdir -p "$RESULTS"
  echo "[study] $MODEL_CONFIG ($MODEL, $NUM_LAYERS layers) -> $RESULTS"
}

amount_flags() {  # 25pct -> --ratio 0.25 ; 2layers -> --n 2
  case "$1" in
    *pct) echo "--ratio $(python -c "print(${1%pct} / 100)")" ;;
    *layers) echo "--n ${1%layers}" ;;
    *) die "pruning amount $1: expected <percent>pct or <count>layers" ;;
  esac
}

# run_prune <method> <amount>: $RESULTS/pruned/<method>-<amount>/model
run_prune() {
  local target="$RESULTS/pruned/$1-$2/model"
  if stage_done "$target"; then echo "[skip] $target"; return; fi
  # shellcheck disable=SC2046
  python -m layer_pruner.prune --model "$MODEL" --model_config "$MODEL_CONFIG" --method "$1" $(amount_flags "$2") \
    --output_dir "$target" --overwrite \
    --calibration "${CALIBRATION:-openai/gsm8k}" --n_calibration "${N_CALIBRATION:-100}" \
    --tasks "${CAL_TASKS:-gsm8k,humaneval,xsum}" --n_items "${CAL_ITEMS:-100}" \
    --max_new_tokens "${MAX_NEW_TOKENS:-8192}" --backend "${BACKEND:-auto}" "${TASK_DATA_FLAGS[@]}"
}

# run_eval <run dir> <model> [adapter]: <run dir>/eval (generative, and classification when CLASSIFY=1)
run_eval() {
  local target="$1/eval" adapter_flags=()
  [ -n "${3:-}" ] && adapter_flags=(--adapter "$3")
  if stage_done "$target"; then echo "[skip] $target"; return; fi
  python -m eval.generative --model "$2" "${adapter_flags[@]}" --model_config "$MODEL_CONFIG" --tasks "$TASKS" \
    --max_items "${ITEMS:-1000}" --max_new_tokens "${MAX_NEW_TOKENS:-8192}" --backend "${BACKEND:-auto}" \
    "${TASK_DATA_FLAGS[@]}" --output_dir "$target.partial"
  if [ "${CLASSIFY:-1}" = 1 ]; then
    python -m eval.classification --model "$2" "${adapter_flags[@]}" --limit "${CLS_LIMIT:-0.2}" \
      ${CLS_TASKS:+--tasks "$CLS_TASKS"} ${CLS_INCLUDE:+--include_path "$CLS_INCLUDE"} \
      --output_dir "$target.partial/classification"
  fi
  rm -rf "$target" && mv "$target.partial" "$target"
}

# prepare_data <dataset>: $RESULTS/data/<dataset>.prompts.jsonl (dataset responses kept)
prepare_data() {
  local target="$RESULTS/data/$1.prompts.jsonl"
  require_datasets "$1"
  if file_done "$target"; then echo "[skip] $target"; return; fi
  python -m self_generate.prepare --dataset "$(dataset_source "$1")" --output "$target" --name "$1" \
    --limit "${SFT_LIMIT:-20000}" --max_length "${SFT_MAX_LENGTH:-8192}" --model "$MODEL" \
    --model_config "$MODEL_CONFIG" --seed 42
}

# self_generate <dataset> [samples]: $RESULTS/data/<dataset>.sgr[<n>].jsonl, the unpruned model's answers
self_generate() {
  local n="${2:-1}" target="$RESULTS/data/$1.sgr.jsonl"
  [ "$n" != 1 ] && target="$RESULTS/data/$1.sgr$n.jsonl"
  prepare_data "$1"
  if file_done "$target"; then echo "[skip] $target"; return; fi
  python -m self_generate.generate --model "$MODEL" --model_config "$MODEL_CONFIG" \
    --prompts "$RESULTS/data/$1.prompts.jsonl" --output "$target" --n "$n" \
    --max_new_tokens "${MAX_NEW_TOKENS:-8192}" --backend "${BACKEND:-auto}"
}

# run_recovery <method> <amount> <sft|sgr> <dataset>: fine-tune the pruned model, then evaluate it
run_recovery() {
  local pruned="$RESULTS/pruned/$1-$2/model" run="$RESULTS/recovered/$1-$2-$3-$4" data
  run_prune "$1" "$2"
  if [ "$3" = sgr ]; then self_generate "$4"; data="$RESULTS/data/$4.sgr.jsonl"
  else prepare_data "$4"; data="$RESULTS/data/$4.prompts.jsonl"; fi
  if stage_done "$run/train"; then echo "[skip] $run/train"; else
    # shellcheck disable=SC2086
    python -m train.sft --recipe "${RECIPE:-qlora}" --model "$pruned" --model_config "$MODEL_CONFIG" \
      --data "$data" --output_dir "$run/train" ${TRAIN_FLAGS:-}
  fi
  run_eval "$run" "$pruned" "$run/train/adapter"
}

# run_probe <run name> <model> [adapter] [layers]: $RESULTS/probe/<run name>
run_probe() {
  local target="$RESULTS/probe/$1" adapter_flags=()
  [ -n "${3:-}" ] && adapter_flags=(--adapter "$3")
  if stage_done "$target"; then echo "[skip] $target"; return; fi
  python -m analysis.arithmetic_probe --model "$2" "${adapter_flags[@]}" --output_dir "$target" \
    --n_items "${PROBE_ITEMS:-200}" ${PROBE_DATA:+--data "$PROBE_DATA"} --ablate_layers "${4:-none}"
}

# build <artifact names>: the tables and figures, from $RESULTS into $RESULTS/artifacts
build() {
  python -m analysis.build_artifacts --results "$RESULTS" --output_dir "$RESULTS/artifacts" --only "$1"
}
