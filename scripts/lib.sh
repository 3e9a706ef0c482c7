#!/usr/bin/env bash
# Helpers sourced by the experiment scripts: checks that fail fast with a message naming what is wrong.

require_model_config() {
  local name="$1"
  if [ -z "$name" ]; then
    echo "error: give a model config name (one of: $(ls configs/models | sed 's/\.yaml$//' | tr '\n' ' '))" >&2
    exit 2
  fi
  if [ ! -f "configs/models/$name.yaml" ]; then
    echo "error: configs/models/$name.yaml: no such model config" >&2
    exit 2
  fi
  python -c "from infra.model_spec import load_model_spec; load_model_spec('$name')" || {
    echo "error: configs/models/$name.yaml is not a valid model config" >&2; exit 2; }
}

model_field() {
  python -c "from infra.model_spec import load_model_spec; print(load_model_spec('$1').$2)"
}

require_file() {
  if [ ! -e "$1" ]; then echo "error: missing input $1${2:+ ($2)}" >&2; exit 2; fi
}

# A stage's output is complete when its manifest.json is present; a rerun skips it.
stage_done() { [ -f "$1/manifest.json" ]; }
