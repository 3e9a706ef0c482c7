"""Model facts from ``configs/models/*.yaml``: hub id, layers, chat-template quirks, stops and prompts.

Code never recognizes a model family by a substring of its name; everything that differs between models is
a value in its config file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.config import ConfigError, from_dict, load_config, load_yaml
from infra.paths import REPO_ROOT

MODEL_CONFIG_DIR = REPO_ROOT / "configs" / "models"
PROMPT_CONFIG_DIR = REPO_ROOT / "configs" / "prompts"
TASKS = (
    "gsm8k",
    "humaneval",
    "mbpp",
    "xsum",
    "arithmetic",
    "sft",
    "toy_arithmetic",
    "toy_brackets",
    "toy_copy",
)


@dataclass
class PromptSpec:
    """How a task is asked: the system turn, the user text (a template) and the start of the answer."""

    user: str = field(metadata={"help": "user turn; {fields} of the item are filled in"})
    system: str | None = None
    assistant_prefix: str = field(default="", metadata={"help": "text the answer starts with; {fields} too"})

    def __post_init__(self) -> None:
        if "{" not in self.user:
            raise ConfigError(f"prompt user template {self.user!r} has no {{field}} to fill")


@dataclass
class ModelSpec:
    """Everything the pipeline needs to know about one model."""

    name: str
    hub_id: str = field(metadata={"help": "hub id or local directory"})
    num_layers: int
    supports_system_turn: bool
    response_template: str = field(metadata={"help": "assistant marker where the training loss starts"})
    prompt_set: str = field(default="default", metadata={"help": "configs/prompts/<name>.yaml"})
    tasks: dict[str, PromptSpec] = field(default_factory=dict, metadata={"help": "per-task overrides"})
    stop_tokens: list[str] = field(default_factory=list)
    stop_strings: list[str] = field(default_factory=list)
    max_context: int = 8192
    dtype: str = "bfloat16"
    notes: str = ""

    def __post_init__(self) -> None:
        if self.num_layers < 2:
            raise ConfigError(
                f"key 'num_layers': a model to prune needs at least 2 layers, got {self.num_layers}"
            )
        unknown = sorted(set(self.tasks) - set(TASKS))
        if unknown:
            raise ConfigError(f"key 'tasks': unknown task {unknown[0]!r} (known: {', '.join(TASKS)})")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"key 'dtype': expected float32, bfloat16 or float16, got {self.dtype!r}")

    def prompt(self, task: str) -> PromptSpec:
        if task not in self.tasks:
            raise ConfigError(f"model config {self.name!r} has no prompt for task {task!r}")
        return self.tasks[task]


def model_config_path(name_or_path: str) -> Path:
    """``llama-3.1-8b-instruct`` -> ``configs/models/llama-3.1-8b-instruct.yaml``; a path is taken as is."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate
    return MODEL_CONFIG_DIR / f"{name_or_path}.yaml"


def load_prompt_set(name: str) -> dict[str, PromptSpec]:
    path = PROMPT_CONFIG_DIR / f"{name}.yaml"
    data = load_yaml(path)
    unknown = sorted(set(data) - set(TASKS))
    if unknown:
        raise ConfigError(f"{path}: unknown task {unknown[0]!r} (known: {', '.join(TASKS)})")
    return {task: from_dict(PromptSpec, spec, f"{path}: {task}") for task, spec in data.items()}


def load_model_spec(name_or_path: str, overrides: dict | None = None) -> ModelSpec:
    """Load a model config; its prompt set fills every task the file does not override."""
    path = model_config_path(name_or_path)
    if not path.exists():
        known = ", ".join(available_model_specs())
        raise ConfigError(f"{path}: no such model config (known: {known})")
    spec = load_config(ModelSpec, path, overrides)
    spec.tasks = {**load_prompt_set(spec.prompt_set), **spec.tasks}
    return spec


def available_model_specs() -> list[str]:
    return sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.yaml"))


def resolve_model_spec(name: str | None, model: str | None) -> ModelSpec:
    """The model config named ``name``; else the one whose ``hub_id`` is ``model`` or, for a pruned or
    fine-tuned checkpoint, the base model recorded in its ``plan.json`` (exact matches, never substrings)."""
    import json

    if name is not None:
        return load_model_spec(name)
    candidates = [model] if model else []
    for record in ("plan.json", "lineage.json"):
        path = Path(model or "") / record
        if model and path.is_file():
            base = json.loads(path.read_text()).get("base_model")
            if base:
                candidates.append(base)
    for spec_name in available_model_specs():
        spec = load_model_spec(spec_name)
        for candidate in candidates:
            if candidate in (
                spec.hub_id,
                str(Path(spec.hub_id).resolve()) if Path(spec.hub_id).exists() else None,
            ):
                return spec
            if (
                Path(candidate).exists()
                and Path(spec.hub_id).exists()
                and Path(candidate).resolve() == Path(spec.hub_id).resolve()
            ):
                return spec
    raise ConfigError(
        f"no model config matches {model!r}; pass --model_config (one of: "
        f"{', '.join(available_model_specs())})"
    )
