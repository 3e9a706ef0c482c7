"""After setup nothing reaches the network: with a fresh cache and the package index out of reach, the
environment's setup installs nothing and NLTK's data is found (scripts/run_tests.sh runs the whole suite so)."""

from __future__ import annotations

import os
import subprocess
import sys

from infra.paths import REPO_ROOT

UNREACHABLE = {
    "PIP_NO_INDEX": "1",
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
    "PIP_EXTRA_INDEX_URL": "http://127.0.0.1:9/simple",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
}


def test_setup_and_punkt_need_no_network_with_a_fresh_cache(tmp_path):
    env = {**os.environ, **UNREACHABLE, "LPR_CACHE": str(tmp_path / "fresh-cache")}
    setup = subprocess.run(
        ["bash", "-c", "source scripts/setup_env.sh && python -c 'import analysis.degeneration as d; print(d.words(\"One. Two words.\"))'"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert setup.returncode == 0, setup.stderr[-2000:]
    assert "[setup] installing" not in setup.stdout + setup.stderr
    assert "['One', '.', 'Two', 'words', '.']" in setup.stdout
    assert not (tmp_path / "fresh-cache" / "nltk_data").exists()  # found in the environment, not fetched


def test_the_suite_runs_with_the_package_index_out_of_reach():
    """The environment this suite runs in (scripts/run_tests.sh) has the package index out of reach."""
    if os.environ.get("PIP_NO_INDEX") != "1":  # run directly with pytest: check the script says so
        text = (REPO_ROOT / "scripts" / "run_tests.sh").read_text()
        assert "export PIP_NO_INDEX=1 PIP_INDEX_URL=http://127.0.0.1:9/simple" in text
        return
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", "/tmp/never", "six==1.16.0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
