"""A100-hours of a model's study, estimated from the same graph the executors run: per stage, per artifact
script (its stages and their ancestors) and for the whole grid (every stage once).

    python -m orchestration.gpu_hours --model_config llama-3.1-8b-instruct
    python -m orchestration.gpu_hours --model_config qwen2.5-7b-instruct --throughput my_measured.yaml
    python -m orchestration.gpu_hours --model_config llama-3.1-8b-instruct --stages   # every stage's hours

A stage's hours are its tokens over a throughput of ``configs/experiments/a100_throughput.yaml``: generated
tokens (evaluation, self-generation, the search, the sweep) over vLLM's rate, trained tokens over the
recipe's, held-out evaluation passes over the forward rate, each scaled by the model's size (its config's
``parameters``) against the 8B model the rates are for. Answer lengths are an assumption stated in that file
(a share of a pruned model's sampled answers run to the token limit), replaced by the mean length measured
where the results already hold answers. These are estimates, not measurements: put your own rates there
(``bash scripts/gpu_check.sh`` writes measured ones) and rerun.

``--compare`` also prints the same formulas applied to the grid as it was planned before the cost changes
(held-out evaluation every 50 steps on the whole split, one search per pruning amount, the runs the paper's
tables do not have), and what each change saves.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infra.config import ConfigError, load_yaml, parse_cli, run_cli
from infra.files import read_jsonl
from infra.paths import REPO_ROOT
from infra.task_registry import registry

DEFAULT_THROUGHPUT = REPO_ROOT / "configs" / "experiments" / "a100_throughput.yaml"
REQUIRED = (
    "generation_tokens_per_s",
    "training_tokens_per_s",
    "forward_tokens_per_s",
    "reference_parameters",
    "mean_response_tokens",
    "mean_example_tokens",
    "dataset_rows",
    "runaway_share",
)


@dataclass
class EstimateArgs:
    model_config: str = field(metadata={"help": "configs/models name (its layers and size)"})
    throughput: str = str(DEFAULT_THROUGHPUT)
    study: str | None = field(default=None, metadata={"help": "a profile of configs/studies [STUDY, paper]"})
    stages: bool = field(default=False, metadata={"help": "also list every stage with its hours"})
    disk: bool = field(default=False, metadata={"help": "also the disk the grid's checkpoints take"})
    compare: bool = field(
        default=False, metadata={"help": "beside the grid as planned before the cost changes"}
    )


def rates(model_config: str, path: str | Path = DEFAULT_THROUGHPUT) -> tuple[dict[str, Any], str]:
    """The throughput file, with the rates ``scripts/gpu_check.sh`` measured for this model on top (where it
    ran); and where they came from."""
    from orchestration.gpu_check import throughput_path

    throughput = load_throughput(path)
    measured = throughput_path(model_config)
    if measured.is_file():
        throughput = {**throughput, **load_yaml(measured)}
        return throughput, f"{Path(path).name} with the rates measured in {measured}"
    return throughput, f"{Path(path).name}, assumed rates"


def load_throughput(path: str | Path) -> dict[str, Any]:
    data = load_yaml(path)
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ConfigError(f"{path}: missing key {missing[0]!r}")
    return data


class CostModel:
    """Hours of a stage from its arguments and cost facts (``Stage.cost``), for one model's plan."""

    def __init__(self, plan: Any, throughput: dict[str, Any]):
        self.plan = plan
        self.t = throughput
        parameters = plan.spec.parameters or throughput["reference_parameters"]
        self.size = parameters / throughput["reference_parameters"]  # rates scale inversely with size
        self.max_tokens = int(plan.max_new_tokens)
        self._measured: dict[tuple[str, bool], float | None] = {}

    # --- lengths -------------------------------------------------------------------------------------------
    def measured(self, task: str, pruned: bool) -> float | None:
        """The mean answer length (tokens) the results already hold for ``task``: the unpruned model's, or
        over every pruned and recovered run's."""
        key = (task, pruned)
        if key not in self._measured:
            root = REPO_ROOT / self.plan.results
            paths = (
                [*root.glob(f"pruned/*/eval/{task}.jsonl"), *root.glob(f"recovered/*/eval/{task}.jsonl")]
                if pruned
                else [root / "base" / "eval" / f"{task}.jsonl"]
            )
            lengths = [
                record["num_tokens"]
                for path in paths
                if path.is_file()
                for record in read_jsonl(path, allow_truncated_tail=True)
                if "num_tokens" in record
            ]
            self._measured[key] = sum(lengths) / len(lengths) if lengths else None
        return self._measured[key]

    def answer_tokens(self, task: str, pruned: bool, limit: int | None = None) -> float:
        """Assumed mean answer length: the task's mean, and for pruned models a share of answers that run
        to the token limit; measured lengths where there are some."""
        measured = self.measured(task, pruned)
        if measured is not None:
            return measured
        lengths = self.t["mean_response_tokens"]
        # A task the file does not know (the CPU studies' toy tasks): half the token limit.
        mean = float(lengths.get(task, self.max_tokens / 2))
        if not pruned:
            return mean
        share = float(self.t["runaway_share"])
        return (1 - share) * mean + share * (limit or self.max_tokens)

    # --- rates -----------------------------------------------------------------------------------------------
    def generation_hours(self, tokens: float, engines: int = 1) -> float:
        rate = self.t["generation_tokens_per_s"] / self.size
        return (tokens / rate + engines * self.t.get("engine_start_s", 0)) / 3600

    def items(self, task: str, items: int | None, use: str = "eval") -> int:
        chosen = items or registry().items[use]
        sizes = self.t.get("task_items", {})
        return min(chosen, sizes[task]) if task in sizes else chosen

    # --- stages ---------------------------------------------------------------------------------------------
    def hours(self, stage: Any) -> float:
        cost = stage.cost
        kind = cost.get("kind")
        method = getattr(self, f"_{kind}", None)
        return method(stage, cost) if method is not None else 0.0

    def _is_pruned(self, stage: Any) -> bool:
        model = str(stage.get("--model", ""))
        return model != self.plan.model

    def _eval(self, stage: Any, cost: dict[str, Any]) -> float:
        pruned = self._is_pruned(stage)
        tokens = sum(
            self.items(task, cost.get("items")) * self.answer_tokens(task, pruned) for task in cost["tasks"]
        )
        return self.generation_hours(tokens)

    def _classification(self, stage: Any, cost: dict[str, Any]) -> float:
        limit = float(cost.get("limit") or 0.2)
        share = limit / 0.2 if limit <= 1 else 1.0
        return self.t.get("classification_hours", 0.5) * share * self.size

    def _candidate_tokens(self, tasks: list[str], items: int) -> float:
        context = registry().context.get("search") if hasattr(registry(), "context") else None
        return sum(
            self.items(task, items, "search") * self.answer_tokens(task, True, context) for task in tasks
        )

    def _calibration(self, stage: Any, cost: dict[str, Any]) -> float:
        return self.t.get("calibration_hours", 0.1) * self.size

    def _prune(self, stage: Any, cost: dict[str, Any]) -> float:
        if cost.get("method") != "iterative":
            return self.t.get("calibration_hours", 0.1) * self.size
        if stage.get("--search_dir"):
            return 0.05 * self.size  # the search is its own stage; this one writes the checkpoint
        return self._search(stage, cost)

    def _search(self, stage: Any, cost: dict[str, Any]) -> float:
        search = stage.search
        candidates = sum(search.candidates(step) for step in range(1, search.steps + 1))
        per_candidate = self._candidate_tokens(cost["tasks"], cost["items"])
        block = self.plan.study.search_block or max(1, math.ceil(search.candidates(1) / 8))
        engines = sum(math.ceil(search.candidates(step) / block) for step in range(1, search.steps + 1))
        baseline = self._candidate_tokens(cost["tasks"], cost["items"])
        return self.generation_hours(candidates * per_candidate + baseline, engines + 1)

    def _sweep(self, stage: Any, cost: dict[str, Any]) -> float:
        per_layer = self._candidate_tokens(cost["tasks"], cost["items"])
        return self.generation_hours(per_layer * (len(stage.layers) + 1), len(stage.layers) + 1)

    def _probe(self, stage: Any, cost: dict[str, Any]) -> float:
        prompt = self.t.get("probe_prompt_tokens", 120)
        tokens = cost["items"] * prompt * (cost.get("ablations", 0) + 1)
        return (
            tokens / (self.t["forward_tokens_per_s"] / self.size) + self.t.get("probe_start_s", 120)
        ) / 3600

    def rows(self, dataset: str, limit: int | None) -> float:
        rows = self.t["dataset_rows"].get(dataset)
        if rows is None:
            if not limit:
                raise ConfigError(f"{DEFAULT_THROUGHPUT.name}: no dataset_rows for dataset {dataset!r}")
            return limit  # a dataset the file does not know: the rows the grid samples
        return min(rows, limit) if limit else rows

    def _self_generate(self, stage: Any, cost: dict[str, Any]) -> float:
        rows = self.rows(cost["dataset"], cost.get("limit") or self._limit(cost["dataset"]))
        return self.generation_hours(rows * cost.get("samples", 1) * self.t["mean_response_tokens"]["sgr"])

    def _limit(self, dataset: str) -> int | None:
        return self.plan.experiments.datasets[dataset].limit

    def _train(self, stage: Any, cost: dict[str, Any]) -> float:
        dataset = cost["dataset"]
        rows = self.rows(dataset, cost.get("limit")) * cost.get("samples", 1)
        example = self.t["mean_example_tokens"].get(dataset, 300)
        held_out = 0.1 * rows
        trained = (rows - held_out) * cost["epochs"] * example
        rate_key = "full_training_tokens_per_s" if cost["recipe"] == "full" else "training_tokens_per_s"
        rate = self.t.get(rate_key, self.t["training_tokens_per_s"]) / self.size
        hours = trained / rate / 3600
        # Held-out evaluation: passes over the (capped) held-out examples at the forward rate.
        cap = stage.get("--eval_max_examples")
        examples = min(held_out, int(cap)) if cap else held_out
        strategy = stage.get("--eval_strategy", "steps")
        steps = (rows - held_out) * cost["epochs"] / 8
        if strategy == "epoch":
            passes = math.ceil(cost["epochs"])
        else:
            passes = steps / int(stage.get("--eval_steps", 50))
        if str(stage.get("--eval_at_start", "true")) == "true":
            passes += 1
        hours += passes * examples * example / (self.t["forward_tokens_per_s"] / self.size) / 3600
        # Full fine-tuning over several GPUs: GPU-hours are the wall-clock hours times the GPUs.
        return hours


@dataclass
class Estimate:
    """Hours per stage of one graph, and its views."""

    plan: Any
    hours: dict[int, float]

    def total(self, stages: list[Any] | None = None) -> float:
        return sum(self.hours[id(s)] for s in (stages if stages is not None else self.plan.graph.stages))

    def counts(self, stages: list[Any]) -> str:
        kinds = {"prune": "prune", "search": "search", "self_generate": "self-generation", "train": "fine-tune",
                 "eval": "evaluation", "sweep": "sweep", "probe": "probe"}  # fmt: skip
        counted: dict[str, int] = {}
        for stage in stages:
            kind = kinds.get(stage.cost.get("kind"))
            if kind:
                counted[kind] = counted.get(kind, 0) + 1
        return ", ".join(
            f"{n} {k}{'s' if n != 1 and not k.endswith('h') else ('es' if n != 1 else '')}"
            for k, n in counted.items()
        )


def estimate(plan: Any, throughput: dict[str, Any]) -> Estimate:
    model = CostModel(plan, throughput)
    return Estimate(plan, {id(stage): model.hours(stage) for stage in plan.graph.stages})


def stage_hours(plan: Any, stage: Any, share: float = 1.0, throughput: dict[str, Any] | None = None) -> float:
    """One stage's hours (its SLURM time limit's basis): ``share`` of them for a job doing part of it."""
    return CostModel(plan, throughput or load_throughput(DEFAULT_THROUGHPUT)).hours(stage) * share


def artifact_views(model_config: str, study: Any) -> dict[str, list[Any]]:
    """Per artifact script, its stages as they stand in the whole graph (the stages and their ancestors)."""
    from orchestration.plan import ARTIFACT_PLANS, in_grid, plan_stages

    whole = plan_stages("paper", model_config, study)
    by_output = {stage.output: stage for stage in whole.graph.stages}
    views = {}
    for name in ARTIFACT_PLANS:
        if not in_grid(whole, name):
            continue
        own = plan_stages(name, model_config, study)
        views[name] = [by_output[s.output] for s in own.graph.stages if s.output in by_output]
    return {"paper": whole.graph.stages, **views}, whole


BYTES_PER_PARAMETER = 2  # bf16 checkpoints


def disk_gb(plan: Any) -> dict[str, float]:
    """GB the whole grid's checkpoints take: the pruned models, the fully fine-tuned models and the adapters
    (LoRA r 64 on every linear projection, float32), plus the unpruned model in the Hugging Face cache; the
    results (JSONL) are small beside them. Training checkpoints are removed after the final save."""
    from layer_pruner.plan import layers_to_remove

    parameters = plan.spec.parameters or 0
    layers = plan.num_layers

    def kept(stage: Any) -> float:
        ratio, n = stage.get("--ratio"), stage.get("--n")
        removed = layers_to_remove(
            layers, n=int(n) if n is not None else None, ratio=float(ratio) if ratio else None
        )
        return (layers - removed) / layers

    pruned = [s for s in plan.graph.stages if s.module == "layer_pruner.prune"]
    trained = [s for s in plan.graph.stages if s.module == "train.sft"]
    full = [s for s in trained if s.get("--recipe") == "full"]
    sizes = {
        "unpruned model (hub cache)": parameters * BYTES_PER_PARAMETER / 1e9,
        f"{len(pruned)} pruned checkpoints": sum(parameters * kept(s) * BYTES_PER_PARAMETER for s in pruned)
        / 1e9,
        f"{len(full)} fully fine-tuned models": len(full) * parameters * 0.75 * BYTES_PER_PARAMETER / 1e9,
        # r 64 on every linear projection: about 1.7% of an 8B model's weights, saved in float32
        f"{len(trained) - len(full)} adapters": (len(trained) - len(full)) * 0.017 * parameters * 4 / 1e9,
    }
    sizes["total"] = sum(sizes.values())
    return sizes


def report(
    model_config: str, study: Any, throughput: dict[str, Any], stages: bool = False
) -> tuple[str, float]:
    views, whole = artifact_views(model_config, study)
    result = estimate(whole, throughput)
    lines = ["| script | stages | A100 hours (estimate) |", "| --- | --- | --- |"]
    for name, view in views.items():
        if name == "paper":
            continue
        lines.append(f"| `scripts/{name}.sh` | {result.counts(view)} | {result.total(view):.0f} |")
    total = result.total()
    lines.append(
        f"| **whole grid** (`scripts/paper.sh`, each stage once) | {result.counts(whole.graph.stages)} | **{total:.0f}** |"
    )
    if stages:
        lines += ["", "| stage | output | A100 hours |", "| --- | --- | --- |"]
        for stage in whole.graph.stages:
            lines.append(f"| {stage.module} | {stage.output} | {result.hours[id(stage)]:.1f} |")
    return "\n".join(lines), total


# The grid as it was planned before the cost changes, and each change by itself.
BEFORE_GRID = "configs/experiments/paper_full.yaml"
CHANGES = {
    "held-out evaluation every 50 steps on the whole split -> once per epoch, capped": (
        "held_out",
        "steps",
        "grid",
    ),
    "one search per pruning amount -> one search per model": ("shared_search", False, True),
    "one engine per search candidate -> blocks of candidates per engine": ("search_block", 1, None),
    "every method for every artifact and model -> the paper's rows": ("experiments", BEFORE_GRID, None),
}


def compare(model_config: str, study: Any, throughput: dict[str, Any]) -> str:
    """The whole grid's hours now, before the cost changes, and what each change saves on its own."""

    def total(**changes: Any) -> float:
        _, whole = artifact_views(model_config, replace(study, **changes))
        return estimate(whole, throughput).total()

    before_settings = {key: old for key, old, _ in CHANGES.values()}
    now, before = total(), total(**before_settings)
    lines = [
        "| grid | A100 hours (estimate) |",
        "| --- | --- |",
        f"| before: {BEFORE_GRID}, held-out every 50 steps, a search per amount, an engine per candidate | {before:.0f} |",
    ]
    for label, (key, _, new) in CHANGES.items():
        changed = total(**{**before_settings, key: new if new is not None else getattr(study, key)})
        lines.append(f"| before, with only {label} | {changed:.0f} (saves {before - changed:.0f}) |")
    lines.append(f"| **now** ({study.experiments}) | **{now:.0f}** ({now / before:.0%} of before) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(EstimateArgs, argv, doc=__doc__)

    def run(a: EstimateArgs) -> None:
        from orchestration.study import load_study

        throughput, source = rates(a.model_config, a.throughput)
        study = load_study(a.study)
        text, total = report(a.model_config, study, throughput, a.stages)
        print(f"{a.model_config}: {total:.0f} A100-hours for the whole grid ({source})")
        print(text)
        if a.compare:
            print()
            print(compare(a.model_config, study, throughput))
        if a.disk:
            from orchestration.plan import plan_stages

            sizes = disk_gb(plan_stages("paper", a.model_config, study))
            print()
            print("| on disk | GB |\n| --- | --- |")
            print("\n".join(f"| {name} | {size:.0f} |" for name, size in sizes.items()))

    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
