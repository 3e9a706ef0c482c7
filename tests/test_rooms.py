"""The packages' rooms: ``infra`` is the shared code the stages import and imports no stage; the stages
(``eval``, ``train``, ``analysis``, ``layer_pruner``, ``self_generate``) never import the orchestration above
them (``orchestration``: the plan, SLURM, GPU hours) nor the CPU studies' models (``infra.study_models``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from infra.paths import REPO_ROOT

STAGES = ("eval", "train", "analysis", "layer_pruner", "self_generate")


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def files(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", STAGES)
def test_a_stage_imports_no_room_above_it(package):
    wrong = {
        f"{path.relative_to(REPO_ROOT)}: {module}"
        for path in files(package)
        for module in imports(path)
        if module.split(".")[0] == "orchestration" or module.startswith("infra.study_models")
    }
    assert not wrong


def test_the_shared_package_imports_no_stage_and_no_orchestration():
    wrong = {
        f"{path.relative_to(REPO_ROOT)}: {module}"
        for path in files("infra")
        for module in imports(path)
        if module.split(".")[0] in {*STAGES, "orchestration"}
    }
    assert not wrong
    shared = [p for p in files("infra") if "study_models" not in p.parts]
    assert not {
        f"{p.relative_to(REPO_ROOT)}"
        for p in shared
        if any(m.startswith("infra.study_models") for m in imports(p))
    }


def test_the_rooms_catch_a_wrong_import(tmp_path):
    """The check reads imports inside functions too (the stages import lazily)."""
    (tmp_path / "stage.py").write_text(
        "def f():\n    from orchestration.plan import PLANS\n    return PLANS\n"
    )
    assert "orchestration.plan" in imports(tmp_path / "stage.py")
