#!/usr/bin/env bash
# Run an experiment script on SLURM: its missing stages as jobs (arrays for the sweep's layers and the
# iterative search's candidates), each after the jobs whose outputs it reads; job ids and logs are printed.
#   bash scripts/slurm/submit.sh scripts/table2_recovery.sh llama-3.1-8b-instruct
#   bash scripts/slurm/submit.sh scripts/figures1-4_sweep.sh llama-3.1-8b-instruct --wait   # then report
#   bash scripts/slurm/submit.sh scripts/table1_pruning.sh llama-3.1-8b-instruct --dry_run  # print sbatch lines
#   python -m orchestration.slurm --report <OUT>/<model>/slurm/submission-<time>.json            # how it went
# Flags: --resources [configs/slurm/a100.yaml], --sbatch="--partition=gpu --account=lab", --max_parallel N.
# The script's variables (OUT, EXPERIMENTS, METHODS, ...) apply as when it runs locally. Resubmitting after a
# failure submits only what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ $# -ge 2 ] || { echo "usage: submit.sh <scripts/artifact.sh> <model config> [flags]" >&2; exit 2; }
exec python -m orchestration.slurm --script "$1" --model_config "$2" "${@:3}"
