#!/usr/bin/env bash
# Installs whatever is missing into a virtual environment (default .venv) and activates it when sourced.
#   source scripts/setup_env.sh        # or: bash scripts/setup_env.sh
# Variables: LPR_VENV (venv path, default .venv), TORCH_SPEC (default torch==2.13.0, the CPU build here;
# on a CUDA node use the conda environment of environment.yaml instead).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LPR_VENV:-$repo_root/.venv}"
python_bin="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtual environment $venv"
  "$python_bin" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] installing ${TORCH_SPEC:-torch==2.13.0}"
  "$venv/bin/python" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
fi
# Reinstall the project only when its dependency list changed since the last install.
stamp="$venv/.lpr-installed"
want="$(sha256sum "$repo_root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing the project and its dependencies (pip install -e .[dev])"
  "$venv/bin/python" -m pip install --quiet -e "$repo_root[dev]"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
