"""Classification benchmarks through lm-evaluation-harness (5-shot, 20% of each task: the original job).

    python -m eval.classification --model outputs/llama/bi-25 --output_dir outputs/llama/bi-25/classification
    python -m eval.classification --model base --adapter run/adapter --tasks hellaswag,piqa --limit 0.2 \\
        --include_path my_tasks/          # extra task YAMLs (offline nodes, tests)

Keeps lm-eval's own output (``lm_eval_results.json``, without its per-sample records) and writes our summary
beside it (``classification.json``: one score per task, the metric used, n) and one ``<task>.jsonl`` per task
with each item's ``id`` and ``score`` (the same metric), for bootstrap intervals over items.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config import ConfigError, parse_cli, run_cli
from infra.files import atomic_write_json, atomic_write_jsonl, atomic_write_text
from infra.manifest import Manifest
from infra.modeling import adapter_base, is_adapter_dir

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

PAPER_TASKS = ["hellaswag", "piqa", "mmlu", "winogrande", "openbookqa", "arc_easy", "arc_challenge"]
# The CPU studies' multiple-choice task (configs/tasks/lm_eval/toy_choice.yaml; infra/study_models writes its items).
TOY_TASKS = ["toy_choice"]


@dataclass
class ClassificationArgs:
    model: str
    output_dir: str
    adapter: str | None = None
    tasks: list[str] = field(default_factory=lambda: list(PAPER_TASKS))
    num_fewshot: int = 5
    limit: float | None = field(default=0.2, metadata={"help": "fraction (<1) or count of items per task"})
    include_path: str | None = None
    model_type: str = field(default="hf", metadata={"help": "hf or vllm"})
    batch_size: int = 8
    dtype: str = "auto"
    device: str | None = field(default=None, metadata={"help": "default: cuda when available, else cpu"})
    # lm-eval's own command-line defaults (--seed 0,1234,1234,1234), which the original's job ran by passing
    # no --seed: Python's random 0; numpy, torch and the few-shot sampler 1234.
    seed: int = field(default=1234, metadata={"help": "numpy, torch and few-shot seed"})
    random_seed: int = field(default=0, metadata={"help": "Python's random seed"})
    metrics: list[str] = field(
        default_factory=lambda: ["acc", "acc_norm"],
        metadata={"help": "first metric found per task is the score"},
    )

    def __post_init__(self) -> None:
        if self.model_type not in ("hf", "vllm"):
            raise ConfigError(f"key 'model_type': expected hf or vllm, got {self.model_type!r}")


def model_args(args: ClassificationArgs) -> dict[str, Any]:
    pretrained, adapter = args.model, args.adapter
    if adapter is None and is_adapter_dir(pretrained):
        adapter, pretrained = pretrained, adapter_base(pretrained)
    values: dict[str, Any] = {"pretrained": pretrained, "dtype": args.dtype}
    if adapter:
        values["peft" if args.model_type == "hf" else "lora_local_path"] = adapter
        if args.model_type == "vllm":
            values["enable_lora"] = True
    return values


def summarize(results: dict[str, Any], tasks: list[str], metrics: list[str]) -> dict[str, Any]:
    scores, used, counts = {}, {}, {}
    for task in tasks:
        entry = results["results"].get(task)
        if entry is None:
            raise ConfigError(f"lm-eval returned no result for task {task!r}")
        for metric in metrics:
            key = f"{metric},none"
            if key in entry:
                scores[task], used[task] = float(entry[key]), metric
                break
        else:
            raise ConfigError(f"task {task!r} has none of the metrics {metrics} (has: {sorted(entry)})")
        counts[task] = results.get("n-samples", {}).get(task, {}).get("effective")
    return {"scores": scores, "metric": used, "n": counts}


def item_records(
    results: dict[str, Any], samples: dict[str, list], task: str, metric: str
) -> list[dict[str, Any]]:
    """Per-item scores of a task (a group's items: those of its subtasks, ids prefixed by the subtask)."""
    subtasks = [task] if task in samples else list((results.get("group_subtasks") or {}).get(task, []))
    records = []
    for subtask in subtasks:
        for sample in samples.get(subtask, []):
            if metric in sample:
                records.append({"id": f"{subtask}/{sample['doc_id']}", "score": float(sample[metric])})
    return records


def task_manager(tasks: list[str], include_path: str | None) -> TaskManager:
    """lm-eval's task index: of ``include_path`` alone when it defines every task asked for as a plain task
    (indexing lm-eval's thousands of built-in YAMLs takes about 12 s per run on a CPU), else with the
    built-in tasks too. A group or tag may name built-in tasks, so it always gets the whole index."""
    from lm_eval.tasks import TaskManager

    if not include_path:
        return TaskManager()
    local = TaskManager(include_path=include_path, include_defaults=False)
    if set(tasks) <= set(local.all_subtasks):
        return local
    return TaskManager(include_path=include_path)


def run(args: ClassificationArgs) -> dict[str, Any]:
    import lm_eval
    from lm_eval.utils import handle_non_serializable

    from infra.modeling import check_causal_lm

    check_causal_lm(args.model)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(
        "eval.classification", config=args, seeds={"seed": args.seed, "random_seed": args.random_seed}
    )
    manifest.add_input("model", args.model)
    limit = args.limit if args.limit is None or args.limit < 1 else int(args.limit)
    device = args.device
    if device is None:  # lm-eval's own default is cuda, even on a machine without one
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    results = lm_eval.simple_evaluate(
        model=args.model_type,
        model_args=model_args(args),
        tasks=args.tasks,
        num_fewshot=args.num_fewshot,
        limit=limit,
        batch_size=args.batch_size,
        device=device,
        task_manager=task_manager(args.tasks, args.include_path),
        random_seed=args.random_seed,
        numpy_random_seed=args.seed,
        torch_random_seed=args.seed,
        fewshot_random_seed=args.seed,
        log_samples=True,
    )
    samples = results.pop("samples", {}) or {}
    atomic_write_text(
        output_dir / "lm_eval_results.json", json.dumps(results, indent=2, default=handle_non_serializable)
    )
    summary = summarize(results, args.tasks, args.metrics)
    summary.update(
        {"model": args.model, "adapter": args.adapter, "num_fewshot": args.num_fewshot, "limit": args.limit}
    )
    atomic_write_json(output_dir / "classification.json", summary)
    for task, metric in summary["metric"].items():
        atomic_write_jsonl(output_dir / f"{task}.jsonl", item_records(results, samples, task, metric))
    manifest.write(output_dir)
    for task, score in summary["scores"].items():
        print(f"[classification] {task}: {summary['metric'][task]} {score:.4f}")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(ClassificationArgs, argv, doc=__doc__, gpu_stage=True)
    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
