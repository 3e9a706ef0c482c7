"""How many runs each paper artifact needs, and an estimate of its A100 hours, from the experiment grid.

    python -m orchestration.gpu_hours --model_config llama-3.1-8b-instruct
    python -m orchestration.gpu_hours --model_config qwen2.5-7b-instruct --throughput my_measured_throughput.yaml

The run counts come from the grid (``configs/experiments/paper.yaml``), the same file the scripts read. The
hours are tokens / throughput with the throughput and mean lengths of ``configs/experiments/a100_throughput.yaml``,
which are assumptions, not measurements: each artifact is counted on its own (runs shared between scripts are
counted in each), so the sum over artifacts overstates the whole grid.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from infra.config import ConfigError, load_yaml, parse_cli, run_cli
from infra.experiments import DEFAULT_EXPERIMENTS, Experiments, load_experiments
from infra.paths import REPO_ROOT
from infra.task_registry import registry

DEFAULT_THROUGHPUT = REPO_ROOT / "configs" / "experiments" / "a100_throughput.yaml"
SCRIPTS = {  # artifact -> script (the sweep and the upper bound are not recovery grids)
    "table_1": "table1_pruning.sh",
    "table_2": "table2_recovery.sh",
    "table_4": "table4_lora.sh",
    "table_6": "table6_ratios.sh",
    "figure_14": "figure14_sgr_vs_sft.sh",
    "figure_5": "figure5_perplexity.sh",
    "figure_7": "figure7_arithmetic.sh",
    "figure_8": "figure8_code.sh",
    "figure_12": "figure12_full_ft.sh",
}


@dataclass
class EstimateArgs:
    model_config: str = field(metadata={"help": "configs/models name (its layer count sizes the searches)"})
    experiments: str = str(DEFAULT_EXPERIMENTS)
    throughput: str = str(DEFAULT_THROUGHPUT)


@dataclass
class Estimate:
    prunes: int = 0
    fine_tunes: int = 0
    evaluations: int = 0
    generations: int = 0
    hours: float = 0.0

    def runs(self) -> str:
        parts = [
            (self.prunes, "prune"),
            (self.generations, "self-generation"),
            (self.fine_tunes, "fine-tune"),
        ]
        parts.append((self.evaluations, "evaluation"))
        return ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in parts if n)


class Model:
    def __init__(self, throughput: dict[str, Any], num_layers: int):
        self.t = throughput
        self.num_layers = num_layers

    def generate_hours(self, answers: float, task: str) -> float:
        tokens = answers * self.t["mean_response_tokens"][task]
        return (tokens / self.t["generation_tokens_per_s"] + self.t["engine_start_s"]) / 3600

    def eval_hours(self, tasks: list[str], classification: bool) -> float:
        hours = sum(self.generate_hours(self.t["task_items"][task], task) for task in tasks)
        return hours + (self.t["classification_hours"] if classification else 0.0)

    def removed(self, amount: str) -> int:
        if amount.endswith("layers"):
            return int(amount.removesuffix("layers"))
        return int(self.num_layers * int(amount.removesuffix("pct")) / 100 + 0.5)

    def prune_hours(self, method: str, amount: str, search_tasks: list[str], items: int) -> float:
        if method != "iterative":
            return 0.1  # calibration forward passes
        per_candidate = sum(items * self.t["mean_response_tokens"][task] for task in search_tasks)
        candidates = sum(self.num_layers - 1 - step for step in range(self.removed(amount)))
        return candidates * per_candidate / self.t["generation_tokens_per_s"] / 3600

    def train_hours(self, dataset: str, epochs: float, recipe: str, rows: float) -> float:
        tokens = rows * 0.9 * epochs * self.t["mean_example_tokens"][dataset]
        if recipe == "full":
            return tokens / self.t["full_training_tokens_per_s"] / 3600 * self.t["full_training_gpus"]
        return tokens / self.t["training_tokens_per_s"] / 3600


def _rows(experiments: Experiments, model: Model, dataset: str) -> float:
    limit = experiments.datasets[dataset].limit
    rows = model.t["dataset_rows"][dataset]
    return min(rows, limit) if limit else rows


def estimate(experiments: Experiments, throughput: dict[str, Any], num_layers: int) -> dict[str, Estimate]:
    model = Model(throughput, num_layers)
    reg = registry()
    eval_tasks, search_tasks = list(reg.eval_tasks), list(reg.search_tasks)
    search_items = reg.items["search"]
    out: dict[str, Estimate] = {}
    for artifact, script in SCRIPTS.items():
        if artifact not in experiments.artifacts:
            continue
        grid = experiments.grid(artifact)
        tasks = list(grid.tasks) or eval_tasks
        classify = not grid.tasks
        e = Estimate(evaluations=1, hours=model.eval_hours(tasks, classify))  # the unpruned model
        for method in grid.methods:
            for amount in grid.amounts:
                e.prunes += 1
                e.hours += model.prune_hours(method, amount, search_tasks, search_items)
        generated: set[str] = set()
        for _, _, recovery, recipe in grid.points(experiments.recipe).values():
            e.evaluations += 1
            e.hours += model.eval_hours(tasks, classify)
            if recovery.kind is None:
                continue
            rows = _rows(experiments, model, recovery.dataset)
            if recovery.kind == "sgr" and recovery.dataset not in generated:
                generated.add(recovery.dataset)
                e.generations += 1
                e.hours += model.generate_hours(rows, "sgr")
            e.fine_tunes += 1
            epochs = experiments.datasets[recovery.dataset].epochs
            e.hours += model.train_hours(recovery.dataset, epochs, recipe, rows)
        out[script] = e
    sweep = Estimate(evaluations=num_layers, prunes=0)
    sweep.hours = sum(model.generate_hours(search_items, t) for t in search_tasks) * num_layers + 0.2
    out["figures1-4_sweep.sh"] = sweep
    ub = experiments.upper_bound
    if ub:
        tasks = list(ub["tasks"])
        dataset = ub["dataset"]
        e = Estimate(prunes=1, generations=1, evaluations=2 + len(ub["recipes"]))
        e.hours = model.eval_hours(tasks, False) * e.evaluations
        e.hours += model.prune_hours(ub["method"], ub["amount"], list(ub["search_tasks"]), search_items)
        rows = _rows(experiments, model, dataset)
        e.hours += model.generate_hours(rows * ub["samples"], "gsm8k")
        for recipe in ub["recipes"]:
            e.fine_tunes += 1
            e.hours += model.train_hours(
                dataset, experiments.datasets[dataset].epochs, recipe, rows * ub["samples"]
            )
        out["upper_bound.sh"] = e
    return out


def render(estimates: dict[str, Estimate]) -> str:
    lines = ["| script | runs | A100 hours (estimate) |", "| --- | --- | --- |"]
    for script, e in estimates.items():
        lines.append(f"| `scripts/{script}` | {e.runs()} | {e.hours:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(EstimateArgs, argv, doc=__doc__)

    def run(a: EstimateArgs) -> None:
        from infra.model_spec import load_model_spec

        throughput = load_yaml(a.throughput)
        missing = {"generation_tokens_per_s", "training_tokens_per_s", "mean_response_tokens"} - set(
            throughput
        )
        if missing:
            raise ConfigError(f"{a.throughput}: missing key {sorted(missing)[0]!r}")
        num_layers = load_model_spec(a.model_config).num_layers
        print(render(estimate(load_experiments(a.experiments), throughput, num_layers)))

    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
