#!/usr/bin/env bash
# Installs whatever is missing, then runs the test suite offline on CPU.
#   bash scripts/run_tests.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup_env.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# After setup nothing may reach the network: the package index is out of reach for the whole run.
export PIP_NO_INDEX=1 PIP_INDEX_URL=http://127.0.0.1:9/simple PIP_EXTRA_INDEX_URL=http://127.0.0.1:9/simple
# Two workers by default (TEST_WORKERS; 0 runs in this process); idle workers take queued tests.
python -m pytest -n "${TEST_WORKERS:-2}" --dist worksteal --durations=20 "$@"
