"""Fetch, on a login node with internet, everything a model's study reads from the Hugging Face hub, so that
compute nodes run with ``HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1`` and meet no dataset nobody fetched.

    python -m orchestration.prefetch --model_config llama-3.1-8b-instruct --list   # what, one per line
    HF_HOME=/shared/hf python -m orchestration.prefetch --model_config llama-3.1-8b-instruct

The list is read from the study's whole graph (``scripts/paper.sh``: every artifact's stages): the model, the
fine-tuning datasets, the calibration texts, the evaluation and search tasks of the task registry, the
arithmetic probe's items and lm-eval's classification tasks (each task's dataset and config). Each line is
``<kind> <repository> [<config>]``. Without ``--list`` each is downloaded into ``HF_HOME`` (the model with
``huggingface_hub.snapshot_download``, the datasets with ``datasets.load_dataset``, as the stages read them).

Gated models (Llama-3.1, Gemma-2, Mistral; ``gated: true`` in their config): accept the licence on the model's
hub page with your account, then log in once with ``hf auth login`` (or export ``HF_TOKEN``) before running
this; the compute nodes need no token.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, parse_cli, run_cli
from infra.paths import REPO_ROOT

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".gz", ".csv")


@dataclass
class PrefetchArgs:
    model_config: str = field(metadata={"help": "configs/models name"})
    study: str | None = field(default=None, metadata={"help": "a profile of configs/studies [STUDY, paper]"})
    list: bool = field(default=False, metadata={"help": "print what would be fetched, fetch nothing"})
    model: bool = field(default=True, metadata={"help": "also the model (false: the datasets only)"})


@dataclass(frozen=True, order=True)
class HubItem:
    kind: str  # model or dataset
    repo: str
    config: str | None = None

    def line(self) -> str:
        return " ".join(part for part in (self.kind, self.repo, self.config) if part)


def is_hub(source: Any) -> bool:
    """A hub id (``owner/name``), not a local file or directory."""
    if not isinstance(source, str) or not source or source.startswith((".", "/", "~")):
        return False
    if source.endswith(LOCAL_SUFFIXES) or (REPO_ROOT / source).exists():
        return False
    return source.count("/") == 1


def task_items(task: str, use: str) -> list[HubItem]:
    """A generative task's hub dataset (the registry's source and config)."""
    from infra.task_registry import registry

    spec = registry().spec(task)
    return [HubItem("dataset", spec.source, spec.hub_config)] if is_hub(spec.source) else []


@functools.cache
def lm_eval_items(tasks: tuple[str, ...], include_path: str | None) -> list[HubItem]:
    """The datasets of lm-eval tasks (groups expanded to their tasks), as their YAML configs name them."""
    from lm_eval.tasks._yaml_loader import load_yaml

    from eval.classification import task_manager

    manager = task_manager(list(tasks), include_path)
    index = manager.task_index

    def leaves(name: str) -> list[str]:
        entry = index.get(name)
        tagged = [n for n, e in index.items() if name in (e.tags or set())]
        if entry is None or entry.kind.name == "TAG":
            if not tagged:
                raise ConfigError(f"lm-eval task {name!r}: not in lm-eval's task index")
            return [leaf for t in tagged for leaf in leaves(t)]
        if entry.kind.name == "GROUP":
            members = entry.cfg.get("task", [])
            return [leaf for t in members for leaf in leaves(t if isinstance(t, str) else t.get("task"))]
        return [name]

    found = []
    for task in tasks:
        for leaf in leaves(task):
            config = load_yaml(index[leaf].yaml_path, resolve_func=False)
            path = config.get("dataset_path")
            if is_hub(path):
                found.append(HubItem("dataset", path, config.get("dataset_name")))
    return found


def stage_items(stage: Any) -> list[HubItem]:
    """What one stage of the graph reads from the hub."""
    from infra.task_registry import registry

    items: list[HubItem] = []
    local = {entry.split("=", 1)[0] for _, entry in stage.args if _ == "--data" and "=" in str(entry)}
    module = stage.module
    if module in ("eval.generative", "layer_pruner.prune", "layer_pruner.search", "layer_pruner.sweep"):
        use = "eval" if module == "eval.generative" else "search"
        tasks = stage.get("--tasks") or (registry().eval_tasks if use == "eval" else registry().search_tasks)
        for task in tasks:
            if task not in local:
                items += task_items(task, use)
    if module in ("layer_pruner.prune", "analysis.bi_profile"):
        from infra.calibration import CalibrationConfig

        source = stage.get("--calibration", CalibrationConfig.source)
        if is_hub(source):
            items.append(HubItem("dataset", source, CalibrationConfig.hub_config))
    if module == "self_generate.prepare":
        source = stage.get("--dataset")
        if is_hub(source):
            items.append(HubItem("dataset", source, stage.get("--hub_config")))
    if module == "analysis.arithmetic_probe":
        from analysis.arithmetic_probe import ProbeArgs

        fields_ = ProbeArgs.__dataclass_fields__
        source = stage.get("--data", fields_["data"].default)
        if is_hub(source):
            items.append(HubItem("dataset", source, stage.get("--hub_config", fields_["hub_config"].default)))
    if module == "eval.classification":
        from eval.classification import PAPER_TASKS

        items += lm_eval_items(tuple(stage.get("--tasks") or PAPER_TASKS), stage.get("--include_path"))
    return items


def hub_items(model_config: str, study: Any, model: bool = True) -> list[HubItem]:
    """Everything the model's whole graph reads from the hub, each once, in a stable order."""
    from infra.model_spec import load_model_spec
    from orchestration.plan import plan_stages

    plan = plan_stages("paper", model_config, study)
    found: set[HubItem] = set()
    if model and is_hub(plan.model):
        found.add(HubItem("model", plan.model))
    for stage in plan.graph.stages:
        found.update(stage_items(stage))
    spec = load_model_spec(model_config)
    if model and spec.gated and is_hub(plan.model):
        print(
            f"[prefetch] {plan.model} is gated: accept its licence on https://huggingface.co/{plan.model} and "
            "log in (hf auth login, or HF_TOKEN) before downloading",
            file=sys.stderr,
        )
    return sorted(found)


def download(item: HubItem) -> None:
    if item.kind == "model":
        from huggingface_hub import snapshot_download

        snapshot_download(
            item.repo, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
        )
    else:
        import datasets

        datasets.load_dataset(item.repo, item.config)


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(PrefetchArgs, argv, doc=__doc__)

    def run(a: PrefetchArgs) -> None:
        from orchestration.study import load_study

        items = hub_items(a.model_config, load_study(a.study), a.model)
        if a.list:
            print("\n".join(item.line() for item in items))
            return
        for number, item in enumerate(items, 1):
            print(f"[prefetch] {number}/{len(items)} {item.line()}", flush=True)
            download(item)
        print(f"[prefetch] {len(items)} repositories in the Hugging Face cache ({Path.home()} or HF_HOME)")

    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
