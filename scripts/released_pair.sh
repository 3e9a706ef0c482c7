#!/usr/bin/env bash
#SBATCH --job-name=released
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=24:00:00
# A released depth-pruned, retrained model against its parent (configs/released/<pair>.yaml): both evaluated on
# the generative tasks, probed on arithmetic, their answers' degeneration measured; retention against the parent
# in <out>/<model config>/artifacts/released_<pair>.md.
#   bash scripts/released_pair.sh minitron-4b-depth
#   PLAN=1 bash scripts/released_pair.sh minitron-4b-depth   # print the stage commands only
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "${BASH_SOURCE[0]}")/..}"
exec python -m orchestration.plan released_pair "${1:-${MODEL_CONFIG:-}}"
