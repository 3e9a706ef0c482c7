#!/usr/bin/env bash
# Stages shared by the experiment scripts. Each stage is skipped when its output is complete (a manifest is
# present), so rerunning a script resumes it. Results follow analysis/layout.py under $RESULTS. Which runs feed
# which artifact, the fine-tuning data, their sample sizes and epochs: the experiment grid $EXPERIMENTS
# (configs/experiments/paper.yaml); the variables below override single values.
#
#   PLAN=1 bash scripts/<artifact>.sh <model config>   prints every stage command in order and runs nothing;
#                                                      complete stages are printed as "[skip] <output>".
# Variables (paper defaults in brackets):
#   EXPERIMENTS [configs/experiments/paper.yaml]   the experiment grid
#   OUT [outputs]            results root; one model's results go to $OUT/<model config>
#   MODEL_PATH [the config's hub_id]    where the unpruned model is read from
#   TASKS [gsm8k,humaneval,mbpp,xsum]   generative tasks evaluated
#   TASK_DATA []             extra eval flags for local task files, e.g. "--data gsm8k=/data/gsm8k.jsonl"
#   ITEMS [registry: 1000]   items per generative task;  MAX_NEW_TOKENS [8192];  BACKEND [auto]: vllm on GPU nodes, else hf
#   CLASSIFY [1]             also run the lm-eval classification tasks (0: never; unrecovered: the unpruned and
#                            pruned models only) (CLS_TASKS, CLS_LIMIT [0.2], CLS_INCLUDE,
#                            CLS_FEWSHOT [5], CLS_DTYPE [auto])
#   CAL_TASKS [gsm8k,humaneval,xsum], CAL_ITEMS [100]    the iterative search's and the sweep's tasks
#   CALIBRATION [openai/gsm8k], N_CALIBRATION [100]      BI / angular calibration texts
#   METHODS, AMOUNTS, RECOVERIES, RECIPES   narrow every artifact's grid (default: $EXPERIMENTS), as the
#                            artifacts' build narrows it, so that a table reads the runs the script made
#   <DATASET> (ALPACA, DOLCI, GSM8K, ...)   a fine-tuning dataset's hub id or local file [the grid's source]
#   SFT_LIMIT [the dataset's limit]; SFT_MAX_LENGTH [8000]   examples sampled; longest example kept (tokens)
#   TRAIN_FLAGS [] extra train.sft flags;
#   FULL_LAUNCH [python]     launcher of full fine-tuning, e.g. "accelerate launch --config_file ..."
#   STEPS [paper]            paper: the dataset's epochs; as_run: stop at the step the original evaluated
#                            (datasets.<name>.steps_as_run: Alpaca 5823, one epoch)
#   SGR_CONTEXT [8192, self_generate.generate's]   prompt + response of self-generation
#   PRUNE_DTYPE [the model config's dtype]   dtype of block influence, the search, the sweep, the BI profile and the probe
#   PROBE_ITEMS [200];  PROBE_DATA [EleutherAI/arithmetic, config arithmetic_1dc; or a local JSONL];
#   PROBE_SEED [42] the probe's item sample

EXPERIMENTS="${EXPERIMENTS:-configs/experiments/paper.yaml}"

die() { echo "error: $*" >&2; exit 2; }

# stage <command...>: run a stage command, or under PLAN=1 print it (shell-quoted where needed) instead.
stage() {
  if [ "${PLAN:-0}" = 1 ]; then
    local arg line=""
    for arg in "$@"; do
      if [[ "$arg" =~ ^[A-Za-z0-9_./:=,@+%-]+$ ]]; then line+="$arg "; else line+="$(printf '%q' "$arg") "; fi
    done
    echo "${line% }"
  else
    "$@"
  fi
}

# pending <output> <complete?>: whether a stage still has to produce <output>. A complete one is reported as
# "[skip] <output>"; under PLAN=1 one already planned in this script is not planned again.
declare -A PLANNED=()
pending() {
  if [ "$2" = yes ]; then echo "[skip] $1"; return 1; fi
  if [ "${PLAN:-0}" = 1 ]; then
    [ -n "${PLANNED[$1]:-}" ] && return 1
    PLANNED[$1]=1
  fi
  return 0
}

# exp <dotted key> [--optional]: a value of the experiment grid (lists space-separated; with --optional,
# empty when the key is absent)
exp() {
  python -m infra.experiments get "$@" --experiments "$EXPERIMENTS" || exit 2
}

# grid_points <artifact>: the runs of the artifact's grid, one "<name> <method> <amount> <recovery> <recipe>"
# line each, in grid order (python -m infra.experiments points: one definition of the grid's runs and their
# names for the scripts and the artifacts); narrowed by METHODS, AMOUNTS, RECOVERIES, RECIPES, and to
# SPLIT_METHODS (this process's share of the methods, scripts/toy_study.sh).
grid_points() {
  # shellcheck disable=SC2046
  python -m infra.experiments points "$1" --experiments "$EXPERIMENTS" $(narrow_flags) \
    ${SPLIT_METHODS:+--only_methods "${SPLIT_METHODS// /,}"} || exit 2
}

# check_recoveries <recoveries...>: fail before any stage runs: every recovery well formed, every dataset
# known, local files present.
check_recoveries() {
  local recovery epochs=""
  for recovery in "$@"; do
    [ "$recovery" = none ] && continue
    case "$recovery" in sft-*|sgr-*) ;; *) die "recovery $recovery: expected none, sft-<dataset> or sgr-<dataset>" ;; esac
    epochs="$(exp "datasets.${recovery#*-}.epochs")"
    require_datasets "${recovery#*-}"
  done
  : "$epochs"
}

# load_grid <artifact>: GRID_POINTS, the artifact's runs (grid_points), checked before any stage runs.
load_grid() {
  GRID_POINTS="$(grid_points "$1")" || exit 2
  # shellcheck disable=SC2046
  check_recoveries $(cut -d' ' -f4 <<< "$GRID_POINTS" | sort -u)
}

# run_grid [hook]: every run of GRID_POINTS (load_grid) through run_point; the hook (a function) runs after
# each run, with POINT_NAME, POINT_MODEL and POINT_ADAPTER set.
run_grid() {
  local name method amount recovery recipe
  while read -r name method amount recovery recipe <&3; do
    [ -n "$name" ] || continue
    run_point "$name" "$method" "$amount" "$recovery" "$recipe"
    [ -z "${1:-}" ] || "$1"
  done 3<<< "$GRID_POINTS"
}

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

# default_of <module> <dataclass> <field>: a stage's own default, so that a paper default is written once
default_of() {
  python -c "import $1 as m; print(m.$2.__dataclass_fields__['$3'].default)"
}

# recipe_field <recipe> <key>: a value of configs/train/<recipe>.yaml (empty when the recipe has none)
recipe_field() {
  python -c "import yaml; from train.recipe import recipe_path; print(yaml.safe_load(recipe_path('$1').read_text()).get('$2') or '')"
}

require_file() {
  [ -e "$1" ] || die "missing input $1${2:+ ($2)}"
}

dataset_var() { echo "$1" | tr '[:lower:]-' '[:upper:]_'; }

dataset_source() {  # the hub id or file a dataset name stands for: its variable, else the grid's source
  local var
  var="$(dataset_var "$1")"
  if [ -n "${!var:-}" ]; then echo "${!var}"; else exp "datasets.$1.source"; fi
}

# require_datasets <names...>: each dataset is in the grid (or named by its variable); local files exist.
require_datasets() {
  local name source
  for name in "$@"; do
    source="$(dataset_source "$name")"
    case "$source" in *.jsonl|*.json|*.parquet|*.gz) require_file "$source" "$(dataset_var "$name")" ;; esac
  done
}

# A stage's output directory is complete when its manifest.json is present; a file output when
# <file>.manifest.json is. dir_pending / file_pending: pending (above) with that test.
stage_done() { [ -f "$1/manifest.json" ]; }
file_done() { [ -f "$1.manifest.json" ]; }
dir_pending() { if stage_done "$1"; then pending "$1" yes; else pending "$1" no; fi; }
file_pending() { if file_done "$1"; then pending "$1" yes; else pending "$1" no; fi; }

# init_study <model config>: sets MODEL_CONFIG, MODEL, NUM_LAYERS, RESULTS and the stage settings.
init_study() {
  require_model_config "${1:-}"
  python -m infra.experiments check "$EXPERIMENTS" > /dev/null || exit 2
  MODEL_CONFIG="$1"
  MODEL="${MODEL_PATH:-$(model_field "$MODEL_CONFIG" hub_id)}"  # MODEL_PATH: a local copy (offline nodes)
  case "$MODEL" in
    /*|./*|../*|.cache/*|outputs/*) [ -f "$MODEL/config.json" ] ||
      die "missing model directory $MODEL (model config $MODEL_CONFIG; set MODEL_PATH, or build the toy model with python -m infra.toy_model)" ;;
  esac
  NUM_LAYERS="$(model_field "$MODEL_CONFIG" num_layers)"
  # Block influence, the search and the sweep in the model's own dtype (bf16 for the paper models), as the
  # original's notebook and vLLM engines ran them.
  DTYPE="${PRUNE_DTYPE:-$(model_field "$MODEL_CONFIG" dtype)}"
  RESULTS="${OUT:-outputs}/$MODEL_CONFIG"
  TASKS="${TASKS:-gsm8k,humaneval,mbpp,xsum}"
  read -r -a TASK_DATA_FLAGS <<< "${TASK_DATA:-}"
  # SEED: the seed of sampling and fine-tuning (unset: each stage's paper default); GEN_BATCH: prompts per
  # generation batch on the HF backend (unset: each stage's default).
  SEED_FLAGS=(${SEED:+--seed "$SEED"})
  GEN_BATCH_FLAGS=(${GEN_BATCH:+--batch_size "$GEN_BATCH"})
  [ "${PLAN:-0}" = 1 ] || mkdir -p "$RESULTS"
  echo "[study] $MODEL_CONFIG ($MODEL, $NUM_LAYERS layers) -> $RESULTS${PLAN:+ (plan only)}" >&2
}

amount_flags() {  # 25pct -> --ratio 0.25 ; 2layers -> --n 2
  case "$1" in
    *pct) echo "--ratio $(python -c "print(${1%pct} / 100)")" ;;
    *layers) echo "--n ${1%layers}" ;;
    *) die "pruning amount $1: expected <percent>pct or <count>layers" ;;
  esac
}

# run_prune <method> <amount> [model dir]: default $RESULTS/pruned/<method>-<amount>/model; the search's
# tasks are CAL_TASKS.
run_prune() {
  local target="${3:-$RESULTS/pruned/$1-$2/model}"
  dir_pending "$target" || return 0
  # shellcheck disable=SC2046
  stage python -m layer_pruner.prune --model "$MODEL" --model_config "$MODEL_CONFIG" --method "$1" \
    $(amount_flags "$2") --output_dir "$target" --overwrite --dtype "$DTYPE" \
    --calibration "${CALIBRATION:-openai/gsm8k}" --n_calibration "${N_CALIBRATION:-100}" \
    --tasks "${CAL_TASKS:-gsm8k,humaneval,xsum}" --n_items "${CAL_ITEMS:-100}" \
    --max_new_tokens "${MAX_NEW_TOKENS:-8192}" --backend "${BACKEND:-auto}" "${TASK_DATA_FLAGS[@]}" \
    "${SEED_FLAGS[@]}" ${GEN_BATCH:+--gen_batch_size "$GEN_BATCH"}
}

# run_eval <run dir> <model> [adapter]: <run dir>/eval. Complete when every task of TASKS has its
# <task>.json (and classification/classification.json with CLASSIFY=1); only the missing tasks are run.
run_eval() {
  local target="$1/eval" adapter_flags=() missing=() task
  [ -n "${3:-}" ] && adapter_flags=(--adapter "$3")
  for task in ${TASKS//,/ }; do [ -f "$target/$task.json" ] || missing+=("$task"); done
  local classify=0
  case "${CLASSIFY:-1}" in
    1) classify=1 ;;
    unrecovered) [[ "$target" == "$RESULTS/recovered/"* ]] || classify=1 ;;
  esac
  [ -f "$target/classification/classification.json" ] && classify=0
  if [ ${#missing[@]} = 0 ] && [ $classify = 0 ]; then pending "$target" yes || return 0; fi
  pending "$target" no || return 0
  if [ ${#missing[@]} -gt 0 ]; then
    local tasks
    tasks="$(IFS=,; echo "${missing[*]}")"
    stage python -m eval.generative --model "$2" "${adapter_flags[@]}" --model_config "$MODEL_CONFIG" \
      --tasks "$tasks" ${ITEMS:+--max_items "$ITEMS"} --max_new_tokens "${MAX_NEW_TOKENS:-8192}" \
      --backend "${BACKEND:-auto}" "${TASK_DATA_FLAGS[@]}" "${SEED_FLAGS[@]}" "${GEN_BATCH_FLAGS[@]}" \
      --output_dir "$target"
  fi
  if [ $classify = 1 ]; then
    stage python -m eval.classification --model "$2" "${adapter_flags[@]}" --limit "${CLS_LIMIT:-0.2}" \
      ${CLS_TASKS:+--tasks "$CLS_TASKS"} ${CLS_INCLUDE:+--include_path "$CLS_INCLUDE"} \
      ${CLS_FEWSHOT:+--num_fewshot "$CLS_FEWSHOT"} ${CLS_DTYPE:+--dtype "$CLS_DTYPE"} \
      --output_dir "$target/classification"
  fi
}

# prepare_data <dataset>: $RESULTS/data/<dataset>.prompts.jsonl (dataset responses kept), sampled and
# length-filtered as the grid says.
prepare_data() {
  local target="$RESULTS/data/$1.prompts.jsonl" limit hub_config
  require_datasets "$1"
  file_pending "$target" || return 0
  limit="${SFT_LIMIT:-$(exp "datasets.$1.limit" --optional)}"
  hub_config="$(exp "datasets.$1.hub_config" --optional)"
  stage python -m self_generate.prepare --dataset "$(dataset_source "$1")" --output "$target" --name "$1" \
    ${hub_config:+--hub_config "$hub_config"} ${limit:+--limit "$limit"} \
    --max_length "${SFT_MAX_LENGTH:-$(exp fine_tuning.max_length)}" --model "$MODEL" \
    --model_config "$MODEL_CONFIG" --seed "$(exp fine_tuning.seed)"
}

# self_generate <dataset> [samples]: $RESULTS/data/<dataset>.sgr[<n>].jsonl, the unpruned model's answers
self_generate() {
  local n="${2:-1}" target="$RESULTS/data/$1.sgr.jsonl"
  [ "$n" != 1 ] && target="$RESULTS/data/$1.sgr$n.jsonl"
  prepare_data "$1"
  file_pending "$target" || return 0
  stage python -m self_generate.generate --model "$MODEL" --model_config "$MODEL_CONFIG" \
    --prompts "$RESULTS/data/$1.prompts.jsonl" --output "$target" --n "$n" \
    --max_new_tokens "${MAX_NEW_TOKENS:-8192}" \
    --max_context "${SGR_CONTEXT:-$(default_of self_generate.generate GenerateArgs max_context)}" --backend "${BACKEND:-auto}" "${SEED_FLAGS[@]}" \
    "${GEN_BATCH_FLAGS[@]}"
}

# fine_tune <recipe> <model> <data> <output dir> <dataset>: train.sft for the dataset's epochs
fine_tune() {
  dir_pending "$4" || return 0
  local launcher="python" global_batch steps=()
  [ "$1" = full ] && launcher="${FULL_LAUNCH:-python}"
  case "${STEPS:-paper}" in
    paper) ;;
    as_run) local as_run; as_run="$(exp "datasets.$5.steps_as_run" --optional)"
      [ -n "$as_run" ] && steps=(--max_steps "$as_run") ;;
    *) die "STEPS=${STEPS}: expected paper (the paper's epochs) or as_run (the original's merged checkpoint)" ;;
  esac
  # The recipe's global batch (full: 8 over any number of processes), shown in the plan.
  global_batch="$(recipe_field "$1" global_batch_size)"
  # shellcheck disable=SC2086
  stage $launcher -m train.sft --recipe "$1" --model "$2" --model_config "$MODEL_CONFIG" --data "$3" \
    --output_dir "$4" --num_train_epochs "$(exp "datasets.$5.epochs")" \
    ${global_batch:+--global_batch_size "$global_batch"} "${steps[@]}" "${SEED_FLAGS[@]}" ${TRAIN_FLAGS:-}
}

# eval_trained <run dir> <pruned model> <recipe>: evaluate a fine-tuned run (adapter, or the full model)
eval_trained() {
  if [ "$3" = full ]; then run_eval "$1" "$1/train/model"; else run_eval "$1" "$2" "$1/train/adapter"; fi
}

# run_point <name> <method> <amount> <recovery> <recipe>: one run of a grid (grid_points gives them).
# recovery "none": prune and evaluate; "<sft|sgr>-<dataset>": prune, fine-tune with the recipe on the dataset's
# or the unpruned model's responses, evaluate. Sets POINT_NAME, POINT_MODEL and POINT_ADAPTER (empty for a
# full model) for what follows.
run_point() {
  local pruned="$RESULTS/pruned/$2-$3/model" recipe="$5" run data kind dataset
  POINT_NAME="$1" POINT_MODEL="$pruned" POINT_ADAPTER=""
  run_prune "$2" "$3"
  if [ "$4" = none ]; then run_eval "$RESULTS/pruned/$2-$3" "$pruned"; return; fi
  kind="${4%%-*}" dataset="${4#*-}"
  case "$kind" in
    sgr) self_generate "$dataset"; data="$RESULTS/data/$dataset.sgr.jsonl" ;;
    sft) prepare_data "$dataset"; data="$RESULTS/data/$dataset.prompts.jsonl" ;;
    *) die "recovery $4: expected none, sft-<dataset> or sgr-<dataset>" ;;
  esac
  run="$RESULTS/recovered/$POINT_NAME"
  fine_tune "$recipe" "$pruned" "$data" "$run/train" "$dataset"
  eval_trained "$run" "$pruned" "$recipe"
  if [ "$recipe" = full ]; then POINT_MODEL="$run/train/model"; else POINT_ADAPTER="$run/train/adapter"; fi
}

# run_probe <run name> <model> [adapter] [layers]: $RESULTS/probe/<run name>
run_probe() {
  local target="$RESULTS/probe/$1" adapter_flags=()
  [ -n "${3:-}" ] && adapter_flags=(--adapter "$3")
  dir_pending "$target" || return 0
  stage python -m analysis.arithmetic_probe --model "$2" "${adapter_flags[@]}" --output_dir "$target" \
    --n_items "${PROBE_ITEMS:-200}" ${PROBE_DATA:+--data "$PROBE_DATA"} ${PROBE_SEED:+--seed "$PROBE_SEED"} --ablate_layers "${4:-none}" \
    --dtype "$DTYPE"
}

# build <artifact names>: the tables and figures, from $RESULTS into $RESULTS/artifacts (BUILD=0: skipped)
build() {
  [ "${BUILD:-1}" = 1 ] || return 0  # BUILD=0: leave the artifacts to one build at the end (toy_study.sh)
  stage python -m analysis.build_artifacts --results "$RESULTS" --output_dir "$RESULTS/artifacts" \
    --experiments "$EXPERIMENTS" --only "$1" $(narrow_flags)
}

# narrow_flags: METHODS, AMOUNTS, RECOVERIES, RECIPES as build_artifacts flags (the grid the runs followed)
narrow_flags() {
  local var flag
  for var in METHODS AMOUNTS RECOVERIES RECIPES; do
    flag="$(echo "$var" | tr '[:upper:]' '[:lower:]')"
    [ -n "${!var:-}" ] && echo "--$flag ${!var// /,}"
  done
  return 0
}
