#!/usr/bin/env bash
# The embedded default: the paper's whole pipeline on CPU, on a small Llama-architecture model trained from
# scratch on toy tasks (single-digit arithmetic, bracket closing, copying, and summary recognition as the
# classification task), model training included. It runs the same graph as the GPU experiments (every
# artifact's stages once, scripts/paper.sh) on the toy grid configs/experiments/toy.yaml, two stages side by
# side (the local executor's lanes, orchestration/local.py):
#   prune by every method -> evaluate -> self-generate -> LoRA with SGR and with dataset responses, QLoRA,
#   full fine-tuning -> evaluate -> single-layer sweep, arithmetic probe, BI profile -> ratios, upper bound
#   -> every table and figure, and the paper's findings tested with their intervals (findings.json).
#   bash scripts/toy_study.sh
#   SEED=1 bash scripts/toy_study.sh            # another toy model and study seed: outputs/toy-seed1
#   TOY_SCALE=full bash scripts/toy_study.sh    # the whole paper grid (configs/studies/toy_full.yaml)
#   TOY_SCALE=small bash scripts/toy_study.sh   # the smallest scale whose findings the tests check
#   TWIN=real bash scripts/toy_study.sh         # the real-model twin: SmolLM2-135M-Instruct, pretrained
#                                               # (configs/studies/real.yaml), in outputs/real(-seed<SEED>)
#   TWIN=real REAL_SCALE=ci bash scripts/toy_study.sh   # its reduced run (the test suite's)
#   STUDY=toy_ci bash scripts/toy_study.sh      # any profile of configs/studies by name
# The study's settings are its profile (configs/studies/<study>.yaml); any variable of
# python -m orchestration.study --variables overrides one value (SEED, ITEMS, METHODS, JOBS [2], ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error
die() { echo "error: $*" >&2; exit 2; }
if [ -z "${STUDY:-}" ]; then
  case "${TWIN:-toy}:${TOY_SCALE:-quick}:${REAL_SCALE:-full}" in
    toy:quick:*) STUDY=toy ;;
    toy:full:*) STUDY=toy_full ;;
    toy:small:*) STUDY=toy_small ;;
    real:*:full) STUDY=real ;;
    real:*:ci) STUDY=real_ci ;;
    *) die "TWIN=${TWIN:-toy} TOY_SCALE=${TOY_SCALE:-quick} REAL_SCALE=${REAL_SCALE:-full}: expected TWIN toy or real, TOY_SCALE quick, full or small, REAL_SCALE full or ci" ;;
  esac
fi
export STUDY
python -m orchestration.plan paper
out="$(python -c 'from orchestration.study import load_study; s = load_study(); print(f"{s.out}/{s.model_config}")')"
echo "[toy] done in $SECONDS s (study $STUDY, seed ${SEED:-0}): results in $out, tables and figures in $out/artifacts"
