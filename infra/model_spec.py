"""Model facts from ``configs/models/*.yaml``: hub id, layers, chat-template quirks, stops and prompts.

Code never recognizes a model family by a substring of its name; everything that differs between models is
a value in its config file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.config import ConfigError, from_dict, load_yaml, set_dotted
from infra.paths import REPO_ROOT

MODEL_CONFIG_DIR = REPO_ROOT / "configs" / "models"
PROMPT_CONFIG_DIR = REPO_ROOT / "configs" / "prompts"
# Prompt-set keys besides the registered tasks: the SGR/SFT conversation and the probe's question form.
EXTRA_PROMPTS = ("sft", "arithmetic")
PROMPT_VARIANTS = ("as_run", "uniform")


def prompt_names() -> tuple[str, ...]:
    from infra.task_registry import registry

    return (*registry().tasks, *EXTRA_PROMPTS)


@dataclass
class PromptSpec:
    """How a task is asked: the task's instruction (placed as the model config says), the user text (a
    template), an optional real system turn, and the start of the answer."""

    user: str = field(metadata={"help": "user turn; {fields} of the item are filled in"})
    instruction: str | None = field(
        default=None, metadata={"help": "the task's instruction: system turn or before the user text"}
    )
    system: str | None = field(default=None, metadata={"help": "a system turn (where the template has one)"})
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
    response_template: str = field(
        metadata={"help": "the template's assistant marker (the toy model's training texts use it)"}
    )
    instruction_placement: str = field(
        default="system",
        metadata={
            "help": "where a task's instruction goes: system (a system turn) or user (before the user "
            "text, then a blank line)"
        },
    )
    prompt_set: str = field(default="default", metadata={"help": "configs/prompts/<name>.yaml"})
    tasks: dict[str, PromptSpec] = field(default_factory=dict, metadata={"help": "per-task overrides"})
    stop_tokens: list[str] = field(default_factory=list)
    self_generation_stop_tokens: list[str] = field(
        default_factory=list, metadata={"help": "extra stop tokens when the model writes SGR answers"}
    )
    stop_strings: list[str] = field(default_factory=list)
    max_context: int = 8192
    dtype: str = "bfloat16"
    parameters: float | None = field(
        default=None, metadata={"help": "parameters of the unpruned model (the A100-hour estimate's size)"}
    )
    gated: bool = field(
        default=False, metadata={"help": "the hub asks for its licence to be accepted before a download"}
    )
    notes: str = ""
    prompt_variant: str = field(
        default="as_run",
        metadata={
            "help": "as_run: this file's per-task overrides (what the original ran); uniform: the "
            "prompt set's instructions for every model"
        },
    )

    def __post_init__(self) -> None:
        if self.instruction_placement not in ("system", "user"):
            raise ConfigError(
                f"key 'instruction_placement': expected system or user, got {self.instruction_placement!r}"
            )
        if self.prompt_variant not in PROMPT_VARIANTS:
            raise ConfigError(
                f"key 'prompt_variant': expected as_run or uniform, got {self.prompt_variant!r}"
            )
        if self.num_layers < 2:
            raise ConfigError(
                f"key 'num_layers': a model to prune needs at least 2 layers, got {self.num_layers}"
            )
        known = prompt_names()
        unknown = sorted(set(self.tasks) - set(known))
        if unknown:
            raise ConfigError(f"key 'tasks': unknown task {unknown[0]!r} (known: {', '.join(known)})")
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


def _prompt_set_data(name: str) -> tuple[Path, dict]:
    path = PROMPT_CONFIG_DIR / f"{name}.yaml"
    data = load_yaml(path)
    known = prompt_names()
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown task {unknown[0]!r} (known: {', '.join(known)})")
    return path, data


def load_prompt_set(name: str) -> dict[str, PromptSpec]:
    path, data = _prompt_set_data(name)
    return {task: from_dict(PromptSpec, spec, f"{path}: {task}") for task, spec in data.items()}


def load_model_spec(
    name_or_path: str, overrides: dict | None = None, prompt_variant: str | None = None
) -> ModelSpec:
    """Load a model config. Its ``tasks`` entries are field-wise overrides of the prompt set's (the strings
    the original code ran for this model); ``prompt_variant="uniform"`` keeps the set's instructions."""
    path = model_config_path(name_or_path)
    if not path.exists():
        known = ", ".join(available_model_specs())
        raise ConfigError(f"{path}: no such model config (known: {known})")
    data = load_yaml(path)
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    if prompt_variant is not None:
        data["prompt_variant"] = prompt_variant
    own = data.pop("tasks", None) or {}
    if not isinstance(own, dict):
        raise ConfigError(f"{path}: key 'tasks': expected a mapping of task to prompt fields")
    _, prompt_set = _prompt_set_data(str(data.get("prompt_set", "default")))
    merged = {task: dict(spec) for task, spec in prompt_set.items()}
    for task, fields in own.items():
        if not isinstance(fields, dict):
            raise ConfigError(f"{path}: key 'tasks.{task}': expected a mapping of prompt fields")
        if data.get("prompt_variant") == "uniform":
            fields = {k: v for k, v in fields.items() if k != "instruction"}
        merged[task] = {**merged.get(task, {}), **fields}
    data["tasks"] = merged
    return from_dict(ModelSpec, data, str(path))


def available_model_specs() -> list[str]:
    return sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.yaml"))


def resolve_model_spec(name: str | None, model: str | None, prompt_variant: str | None = None) -> ModelSpec:
    """The model config named ``name``; else the one whose ``hub_id`` is ``model`` or, for a pruned or
    fine-tuned checkpoint, the base model recorded in its ``plan.json`` (exact matches, never substrings)."""
    import json

    if name is not None:
        return load_model_spec(name, prompt_variant=prompt_variant)
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
                return load_model_spec(spec_name, prompt_variant=prompt_variant)
            if (
                Path(candidate).exists()
                and Path(spec.hub_id).exists()
                and Path(candidate).resolve() == Path(spec.hub_id).resolve()
            ):
                return load_model_spec(spec_name, prompt_variant=prompt_variant)
    raise ConfigError(
        f"no model config matches {model!r}; pass --model_config (one of: "
        f"{', '.join(available_model_specs())})"
    )
