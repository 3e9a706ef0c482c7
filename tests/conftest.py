"""Test kit: offline settings and tiny random models of every supported architecture."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# vLLM's CPU build binds an engine's threads to the cores it picks, on 2 cores always the first one: the two
# test workers' engines would share one core and leave the other idle.
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from infra.paths import REPO_ROOT  # noqa: E402
from infra.study_models.tiny_models import ARCHITECTURES, TinyModelSpec, build_tiny_model, tiny_model_spec  # noqa: E402
from tests.helpers.chat_templates import REAL_EXTRA_TOKENS, real_chat_template  # noqa: E402

# Real evaluation data that travels with the repository (tests/data/README.md): a plain clone tests the same.
REAL_DATA = REPO_ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not (REAL_DATA / "README.md").is_file():
        raise FileNotFoundError(f"{REAL_DATA}: the repository's test data is missing (tests/data/README.md)")
    return REAL_DATA


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny random models (8 layers) of Llama, Qwen2, Mistral and Gemma2, saved as HF directories, their
    tokenizers carrying the paper models' own chat templates (tests/data/chat_templates). Built once per run:
    the pytest-xdist workers share one build (the first builds under a lock, the others wait and read it)."""
    import torch

    from infra.files import output_lock

    torch.set_num_threads(2)
    shared = os.environ.get("PYTEST_XDIST_WORKER") is not None
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if shared else base) / "tiny_models"
    paths = {arch: root / arch for arch in ARCHITECTURES}
    with output_lock(root.parent / "tiny_models.lock", root, wait=True):
        if not (root / "complete").is_file():
            for arch in ARCHITECTURES:
                spec = TinyModelSpec(
                    arch=arch,
                    num_layers=8,
                    chat_template=real_chat_template(arch),
                    added_tokens=REAL_EXTRA_TOKENS[arch],
                )
                build_tiny_model(spec, paths[arch])
            (root / "complete").write_text("built\n")
    return paths


@pytest.fixture(scope="session")
def tiny_specs(tiny_models) -> dict:
    return {arch: tiny_model_spec(arch, path) for arch, path in tiny_models.items()}


@pytest.fixture
def model_config_file(tmp_path):
    """Factory: write a configs/models-style YAML for a tiny model and return its path."""
    import yaml

    from infra.study_models.tiny_models import INSTRUCTION_PLACEMENT, RESPONSE_TEMPLATES, SPECIAL_TOKENS

    def write(arch: str, model_dir: Path, **overrides) -> Path:
        config = {
            "name": f"tiny-{arch}",
            "hub_id": str(model_dir),
            "num_layers": 8,
            "supports_system_turn": arch != "gemma2",
            "instruction_placement": INSTRUCTION_PLACEMENT[arch],
            "response_template": RESPONSE_TEMPLATES[arch],
            "stop_tokens": [SPECIAL_TOKENS[arch]["eos"]],
            "max_context": 1024,
            "dtype": "float32",
            **overrides,
        }
        path = tmp_path / f"tiny-{arch}-{len(list(tmp_path.glob('tiny-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write


# --- worker balance (tests/helpers/balance.py) -------------------------------------------------------------
_measured: dict[str, float] = {}


def pytest_collection_modifyitems(config, items) -> None:
    from tests.helpers.balance import balanced_order, known_durations

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    items[:] = balanced_order(items, workers, known_durations())


def pytest_runtest_logreport(report) -> None:
    _measured[report.nodeid] = _measured.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session) -> None:
    target = os.environ.get("LPR_RECORD_DURATIONS")
    if target and not hasattr(session.config, "workerinput"):  # the controller sees every worker's reports
        from tests.helpers.balance import record

        record(_measured, Path(target))
