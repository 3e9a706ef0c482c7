"""A study: every setting of the experiment graph, typed, read from a profile under ``configs/studies/``.

    STUDY=toy PLAN=1 bash scripts/paper.sh toy-llama     # the toy profile (configs/studies/toy.yaml)
    python -m orchestration.study toy                     # print a profile as resolved (overrides applied)

A profile is a YAML file of :class:`Study` fields; ``extends: <profile>`` starts from another one (the CI
scales extend the studies they shrink). Unset fields leave each stage its own default (its dataclass, the task
registry), so a paper default is written once. Text values may name ``{cache}`` (``LPR_CACHE``, default
``.cache``), ``{seed}`` and ``{seed_suffix}`` (``-seed<N>`` for a seed other than 0).

Every field can be overridden for one run by the environment variable named in its ``env`` metadata (most
are the field's name in capitals: ``ITEMS=4``, ``METHODS=bi``); lists are comma- or space-separated. The
variables, their fields and their help are printed by ``python -m orchestration.study --variables``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, from_dict, load_yaml
from infra.paths import REPO_ROOT, cache_dir

STUDY_DIR = REPO_ROOT / "configs" / "studies"
CLASSIFY = ("all", "none", "unrecovered")


def _env(name: str, help: str, default: Any = None, factory: Any = None) -> Any:
    metadata = {"env": name, "help": help}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Study:
    """The settings of one study (a profile, then the environment's overrides)."""

    name: str = field(default="paper", metadata={"help": "the profile's name"})
    model_config: str | None = field(
        default=None, metadata={"help": "the model config the study runs on (the CPU studies' own model)"}
    )
    build_model: list[str] = field(
        default_factory=list,
        metadata={"help": "a command that builds the study's model (and its data) when missing; cached"},
    )
    model_steps: int | None = _env(
        "TOY_STEPS", "training steps of a model the study builds (the toy model's)"
    )
    greedy: bool = field(
        default=False, metadata={"help": "also score the unpruned model greedily (the toy model's mastery)"}
    )
    experiments: str = _env("EXPERIMENTS", "the experiment grid", "configs/experiments/paper.yaml")
    out: str = _env("OUT", "results root; one model's results go to <out>/<model config>", "outputs")
    model_path: str | None = _env("MODEL_PATH", "where the unpruned model is read from [the config's hub_id]")
    seed: int | None = _env("SEED", "the seed of sampling and fine-tuning [each stage's]")
    # Generative evaluation
    tasks: list[str] | None = _env("TASKS", "generative tasks evaluated [the registry's eval tasks]")
    task_data: list[str] = _env(
        "TASK_DATA", "local task files, task=file (nodes without internet)", factory=list
    )
    items: int | None = _env("ITEMS", "items per generative task [registry: 1000]")
    max_new_tokens: int | None = _env("MAX_NEW_TOKENS", "new tokens per answer [eval.generative's 8192]")
    backend: str = _env("BACKEND", "auto (vllm on a GPU node, else hf), hf or vllm", "auto")
    gen_batch: int | None = _env("GEN_BATCH", "prompts per generation batch on the HF backend [each stage's]")
    # Classification
    classify: str = _env(
        "CLASSIFY", "lm-eval classification: all runs, none, or unrecovered (unpruned and pruned only)", "all"
    )
    cls_tasks: list[str] | None = _env("CLS_TASKS", "lm-eval tasks [the paper's seven]")
    cls_limit: float | None = _env("CLS_LIMIT", "lm-eval --limit [0.2]")
    cls_include: str | None = _env("CLS_INCLUDE", "a directory of extra lm-eval task YAMLs")
    cls_fewshot: int | None = _env("CLS_FEWSHOT", "shots [5]")
    cls_dtype: str | None = _env("CLS_DTYPE", "dtype of the classification model [auto]")
    # Pruning, the search and the sweep
    cal_tasks: list[str] | None = _env(
        "CAL_TASKS", "the search's and the sweep's tasks [gsm8k,humaneval,xsum]"
    )
    cal_items: int | None = _env("CAL_ITEMS", "items per task in the search [registry: 100]")
    calibration: str | None = _env("CALIBRATION", "BI / angular calibration texts [openai/gsm8k]")
    n_calibration: int | None = _env("N_CALIBRATION", "calibration texts [100]")
    prune_dtype: str | None = _env(
        "PRUNE_DTYPE", "dtype of BI, the search, the sweep, the BI profile and the probe [the model config's]"
    )
    sweep_layers: list[int] | None = _env("SWEEP_LAYERS", "layers of the single-layer sweep [1..L-1]")
    n_items: int | None = _env("N_ITEMS", "items per task and layer in the sweep [registry: 100]")
    search_block: int | None = _env(
        "SEARCH_BLOCK",
        "search candidates per SLURM array task, sharing one engine [a step's candidates over 8 tasks]",
    )
    shared_search: bool = _env(
        "SHARED_SEARCH",
        "one greedy search per model and search-task set, its order a prefix for every amount (false: one "
        "search per amount)",
        True,
    )
    # Fine-tuning data and recovery
    datasets: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "help": "a fine-tuning dataset's hub id or local file [the grid's source]; env: the dataset's "
            "name in capitals (ALPACA, DOLCI, GSM8K, ...)"
        },
    )
    sft_limit: int | None = _env("SFT_LIMIT", "examples sampled per dataset [the grid's limit]")
    sft_max_length: int | None = _env("SFT_MAX_LENGTH", "longest example kept, tokens [the grid's 8000]")
    sgr_context: int | None = _env("SGR_CONTEXT", "prompt + response of self-generation [8192]")
    sgr_max_new_tokens: int | None = _env(
        "SGR_MAX_NEW_TOKENS", "new tokens of a self-generated answer [the evaluation's MAX_NEW_TOKENS]"
    )
    train: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "train.sft settings for every fine-tune (the CPU studies')"}
    )
    train_flags: list[str] = _env(
        "TRAIN_FLAGS", "extra train.sft flags, after the profile's train settings", factory=list
    )
    full_launch: list[str] = _env(
        "FULL_LAUNCH",
        "launcher of full fine-tuning, e.g. accelerate launch --config_file configs/accelerate/fsdp.yaml",
        factory=lambda: ["python"],
    )
    steps: str = _env(
        "STEPS", "paper: the dataset's epochs; as_run: stop at the step the original evaluated", "paper"
    )
    held_out: str = _env(
        "HELD_OUT",
        "held-out evaluation during fine-tuning: grid (the grid's: once per epoch on a capped set, Figure 5's "
        "runs a curve) or steps (every eval_steps on the whole split, from step 0)",
        "grid",
    )
    # The arithmetic probe
    probe_items: int | None = _env("PROBE_ITEMS", "probe items [200; Figure 7: the grid's 100]")
    probe_data: str | None = _env("PROBE_DATA", "probe items [EleutherAI/arithmetic arithmetic_1dc]")
    probe_seed: int | None = _env("PROBE_SEED", "the probe's item sample [42]")
    ablate: str = _env("ABLATE", "layers ablated in the unpruned model's probe (Figure 7)", "all")
    figure_7_probe_items: int | None = _env(
        "FIGURE7_PROBE_ITEMS",
        "probe items of Figure 7's runs and its unpruned model [the grid's probe_items]",
    )
    critical_probe_items: int | None = _env(
        "CRITICAL_PROBE_ITEMS",
        "fresh probe items on which the layer whose ablation drops the probe most (chosen on the probe's own "
        "items) is measured against the unpruned model (finding 6) [none: no such stage]",
    )
    # The upper bound and Figure 12
    samples: int | None = _env("SAMPLES", "answers per GSM8K training question (upper bound) [the grid's 8]")
    upper_bound_tasks: list[str] | None = _env("UPPER_BOUND_TASKS", "the upper bound's tasks [the grid's]")
    upper_bound_search_tasks: list[str] | None = _env(
        "UPPER_BOUND_SEARCH_TASKS", "the upper bound's search tasks [the grid's]"
    )
    figure12_tasks: list[str] | None = _env("FIGURE12_TASKS", "Figure 12's tasks [the grid's]")
    # Narrowing: the grid as one run narrows it (the artifacts' build narrows it alike).
    methods: list[str] = _env("METHODS", "replace every grid's pruning methods", factory=list)
    amounts: list[str] = _env("AMOUNTS", "replace every grid's pruning amounts", factory=list)
    recoveries: list[str] = _env("RECOVERIES", "replace every grid's recoveries", factory=list)
    recipes: list[str] = _env("RECIPES", "replace every grid's fine-tuning recipes", factory=list)
    extras: list[str] = _env(
        "EXTRAS", "opt-in runs the paper's tables do not have (names under extras: in the grid)", factory=list
    )
    # The local executor
    jobs: int = _env("JOBS", "stages run side by side by the local executor", 1)
    throughput: str | None = field(
        default=None,
        metadata={
            "help": "the rates the local executor weighs stages by [configs/experiments/a100_throughput.yaml]"
        },
    )
    threads: int | None = _env("THREADS", "threads per stage when several run side by side [cores / jobs]")

    def __post_init__(self) -> None:
        self.classify = {"1": "all", "0": "none"}.get(self.classify, self.classify)
        if self.classify not in CLASSIFY:
            raise ConfigError(f"key 'classify': expected one of {', '.join(CLASSIFY)}, got {self.classify!r}")
        if self.steps not in ("paper", "as_run"):
            raise ConfigError(
                f"key 'steps': {self.steps}: expected paper (the paper's epochs) or as_run (the original's "
                "merged checkpoint)"
            )
        if self.held_out not in ("grid", "steps"):
            raise ConfigError(f"key 'held_out': expected grid or steps, got {self.held_out!r}")
        if self.jobs < 1:
            raise ConfigError(f"key 'jobs': expected >= 1, got {self.jobs}")

    def build_command(self) -> list[str]:
        """The command that builds the study's model when it is missing (cached: quick when it is not)."""
        if not self.build_model:
            return []
        return [*self.build_model, *(["--steps", str(self.model_steps)] if self.model_steps else [])]

    @property
    def narrowing(self) -> dict[str, list[str]]:
        return {
            key: list(getattr(self, key))
            for key in ("methods", "amounts", "recoveries", "recipes")
            if getattr(self, key)
        }


def study_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(Study)}


def env_variables() -> dict[str, str]:
    """Environment variable -> field, for every overridable field."""
    return {f.metadata["env"]: f.name for f in dataclasses.fields(Study) if "env" in f.metadata}


def _profile_path(profile: str) -> Path:
    path = Path(profile)
    if path.suffix in (".yaml", ".yml"):
        return path if path.is_absolute() else REPO_ROOT / path
    return STUDY_DIR / f"{profile}.yaml"


def read_profile(profile: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A profile's values with those of the profile it extends underneath."""
    path = _profile_path(profile)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in STUDY_DIR.glob("*.yaml")))
        raise ConfigError(f"{path}: no such study profile (known: {known})")
    if profile in seen:
        raise ConfigError(f"{path}: extends itself ({' -> '.join((*seen, profile))})")
    data = load_yaml(path)
    parent = data.pop("extends", None)
    unknown = set(data) - set(study_fields())
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    base = read_profile(str(parent), (*seen, profile)) if parent else {}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def _split(text: str) -> list[str]:
    return [part for part in re.split(r"[,\s]+", text.strip()) if part]


def _from_env(name: str, text: str, annotation: Any) -> Any:
    """An environment variable's text as the field's type (lists comma- or space-separated)."""
    from infra.config import _parse_flag_value

    options = [annotation, *(a for a in typing.get_args(annotation) if a is not type(None))]
    if any(typing.get_origin(option) is list for option in options):
        if name in ("TRAIN_FLAGS", "FULL_LAUNCH"):  # command words, split as a shell would
            return text.split()
        return [_parse_flag_value(part) for part in _split(text)]
    return _parse_flag_value(text.strip())


def load_study(profile: str | None = None, env: Mapping[str, str] | None = None) -> Study:
    """The study of ``profile`` (default: ``$STUDY``, else ``paper``) with ``env``'s overrides, resolved."""
    env = dict(os.environ if env is None else env)
    profile = profile or env.get("STUDY") or "paper"
    data = read_profile(profile)
    hints = typing.get_type_hints(Study)
    sources = []
    for variable, name in env_variables().items():
        value = env.get(variable, "")
        if value != "":
            data[name] = _from_env(variable, value, hints[name])
            sources.append(variable)
    # A fine-tuning dataset's source: its name in capitals (DOLCI=/data/dolci.jsonl).
    from infra.experiments import load_experiments

    experiments_path = data.get("experiments", Study.experiments)
    grid = load_experiments(REPO_ROOT / _expand(str(experiments_path), data))
    datasets = dict(data.get("datasets") or {})
    for dataset in grid.datasets:
        value = env.get(dataset_variable(dataset), "")
        if value:
            datasets[dataset] = value
    if datasets:
        data["datasets"] = datasets
    expanded = {}
    for key, value in data.items():
        new = _expand_value(value, data)
        # A placeholder in a number's place ("{seed+42}") reads as the number it expands to.
        if (
            isinstance(value, str)
            and new != value
            and new.lstrip("-").isdigit()
            and int in typing.get_args(hints[key])
        ):
            new = int(new)
        expanded[key] = new
    data = expanded
    where = f"{_profile_path(profile)}" + (f" + environment ({', '.join(sources)})" if sources else "")
    return from_dict(Study, data, where)


def dataset_variable(dataset: str) -> str:
    """The environment variable that points a dataset at another source: its name in capitals."""
    return dataset.upper().replace("-", "_")


def _cache_text() -> str:
    """The cache as the commands name it: relative to the repository when inside it (``.cache``)."""
    cache = cache_dir().resolve()
    try:
        return str(cache.relative_to(REPO_ROOT.resolve()))
    except ValueError:
        return str(cache)


def _expand(text: str, data: Mapping[str, Any]) -> str:
    seed = data.get("seed")
    seed_value = int(seed) if seed not in (None, "") else 0
    text = re.sub(r"\{seed\+(\d+)\}", lambda m: str(seed_value + int(m.group(1))), text)
    return (
        text.replace("{cache}", _cache_text())
        .replace("{seed_suffix}", "" if seed_value == 0 else f"-seed{seed_value}")
        .replace("{seed}", str(seed_value))
    )


def _expand_value(value: Any, data: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return _expand(value, data)
    if isinstance(value, list):
        return [_expand_value(v, data) for v in value]
    if isinstance(value, dict):
        return {k: _expand_value(v, data) for k, v in value.items()}
    return value


def main(argv: list[str] | None = None) -> int:
    import yaml

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--variables"]:
        for variable, name in sorted(env_variables().items()):
            print(f"{variable:26} {name}: {study_fields()[name].metadata['help']}")
        return 0
    if len(argv) > 1:
        print("usage: python -m orchestration.study [profile | --variables]", file=sys.stderr)
        return 2
    try:
        study = load_study(argv[0] if argv else None)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(dataclasses.asdict(study), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
