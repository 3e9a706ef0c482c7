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


def test_gpu_hours_tables_are_what_the_command_prints():
    """The README's A100-hour tables are the estimator's output for Llama (per script, the whole grid, and the
    grid before the cost changes), and its per-model totals the whole grids' — not typed by hand."""
    import subprocess
    import sys

    def run(model: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "orchestration.gpu_hours", "--model_config", model, "--compare"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    header, rest = run("llama-3.1-8b-instruct").split("\n", 1)
    table, compare = rest.strip().split("\n\n")
    assert table.startswith("| script | stages |") and table in README
    assert compare.startswith("| grid |") and compare in README
    totals = {
        model: int(re.match(r"\S+: (\d+) A100-hours", run(model)).group(1))
        for model in ("qwen2.5-7b-instruct", "mistral-7b-instruct-v0.3", "gemma-2-2b-it")
    }
    total = int(re.match(r"\S+: (\d+) A100-hours", header).group(1))
    assert (
        f"Llama-3.1-8B {total}, Qwen2.5-7B {totals['qwen2.5-7b-instruct']} (with Figures 12 and 14 and the upper "
        f"bound), Mistral-7B\n{totals['mistral-7b-instruct-v0.3']}, Gemma-2-2B {totals['gemma-2-2b-it']} A100-hours"
    ) in README


# What the tests run of the README's A100 section; every other command there is marked as needing the node.
A100_TESTED = (
    "python -m orchestration.prefetch --model_config llama-3.1-8b-instruct --list",  # tests/test_gpu_path.py
    "PLAN=1 bash scripts/table2_recovery.sh llama-3.1-8b-instruct",  # tests/test_plan.py
    "python -m orchestration.gpu_hours --model_config llama-3.1-8b-instruct --disk",  # below
    "export ",  # settings, run by nothing
    "# ",
)


def test_every_command_of_the_a100_section_is_tested_or_marked_as_needing_the_node():
    section = README.split("## On an A100 node", 1)[1].split("\n## ", 1)[0]
    assert "huggingface-cli" not in README
    lines = [
        line.strip()
        for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
        for line in block.splitlines()
    ]
    commands = [line for line in lines if line and not line.startswith("https://")]
    assert len(commands) >= 8
    for line in commands:
        marked = "# (GPU" in line or "# (login node" in line
        assert marked or line.startswith(A100_TESTED) or line.endswith("\\"), line


def test_the_disk_the_readme_gives_is_what_the_command_prints():
    import subprocess
    import sys

    for model, total in (
        ("llama-3.1-8b-instruct", 192),
        ("qwen2.5-7b-instruct", 221),
        ("mistral-7b-instruct-v0.3", 52),
        ("gemma-2-2b-it", 14),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "orchestration.gpu_hours", "--model_config", model, "--disk"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert f"| total | {total} |" in out, (model, out[-300:])
    assert "Llama-3.1-8B 192 GB" in README and "Qwen2.5-7B 221 GB" in README and "Gemma-2-2B 14 GB" in README
