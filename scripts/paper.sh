#!/usr/bin/env bash
#SBATCH --job-name=paper
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=36-07:00:00
# Every artifact of the paper's grid for one model: each stage of every artifact script once (the one graph
# of the model's runs), then one build of every table and figure. On a cluster, submit it instead of running
# it in one job: bash scripts/slurm/submit.sh scripts/paper.sh <model config>.
#   PLAN=1 bash scripts/paper.sh llama-3.1-8b-instruct   # print the whole graph
#   python -m orchestration.gpu_hours --model_config llama-3.1-8b-instruct   # its A100-hours
# The study's settings: STUDY [paper] (configs/studies/), overridden by the variables of
# python -m orchestration.study --variables.
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
exec python -m orchestration.plan paper "${1:-${MODEL_CONFIG:-}}"
