"""Every command and path the README cites exists, so the docs cannot drift from the code."""

from __future__ import annotations

import re

from infra.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def code_blocks() -> list[str]:
    return re.findall(r"```(?:bash)?\n(.*?)```", README, flags=re.S)


def test_bash_scripts_exist():
    scripts = set(re.findall(r"bash (scripts/[\w./-]+\.sh)", README))
    assert {"scripts/toy_study.sh", "scripts/run_tests.sh"} <= scripts
    for script in scripts:
        assert (REPO_ROOT / script).is_file(), script


def test_python_modules_exist():
    modules = set(re.findall(r"python -m ([\w.]+)", README))
    assert modules
    for module in modules:
        assert (REPO_ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_cited_paths_exist():
    cited = set(
        re.findall(
            r"`((?:configs|infra|layer_pruner|self_generate|train|eval|analysis|scripts|tests|bench|docs)"
            r"/[\w./-]*|environment\.yaml|pyproject\.toml)`",
            README,
        )
    )
    tree = re.search(r"## Files\n\n```\n(.*?)```", README, flags=re.S).group(1)
    cited |= {line.split()[0] for line in tree.splitlines() if line.strip()}
    assert len(cited) > 10
    for path in cited:
        assert (REPO_ROOT / path).exists(), path


def test_ci_runs_the_readme_test_command():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "bash scripts/run_tests.sh" in README
    assert "bash scripts/run_tests.sh" in ci
    assert "ruff check" in ci


def test_flags_cited_for_prune_exist():
    from layer_pruner.prune import PruneArgs

    fields = set(PruneArgs.__dataclass_fields__)
    for command in re.findall(r"python -m layer_pruner\.prune (.*?)(?:\n(?!\s)|$)", README, flags=re.S):
        for flag in re.findall(r"--(\w+)", command):
            assert flag in fields, flag


def test_gpu_hours_table_is_what_the_command_prints():
    """The README's runs and A100-hour table is the estimator's output for Llama, not typed by hand."""
    import subprocess
    import sys

    table = subprocess.run(
        [sys.executable, "-m", "orchestration.gpu_hours", "--model_config", "llama-3.1-8b-instruct"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert table.startswith("| script | runs |")
    assert table in README
