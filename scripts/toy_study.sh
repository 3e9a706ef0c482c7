#!/usr/bin/env bash
# The embedded default: the pipeline's stages end to end on a tiny model, on CPU, in minutes.
#   bash scripts/toy_study.sh
# Variables: OUT (default outputs/toy), MODEL_CONFIG (default tiny-llama).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT="${OUT:-outputs/toy}"
MODEL_DIR=".cache/models/tiny-llama"
mkdir -p "$OUT"

if [ ! -f "$MODEL_DIR/config.json" ]; then
  python -m infra.tiny_models --arch llama --num_layers 8 --output_dir "$MODEL_DIR"
fi
echo "[toy] model: $MODEL_DIR"
echo "[toy] done; outputs under $OUT"
