"""The experiments' stage graph: for a plan (an artifact script, or ``paper``: every artifact) and a model
config, the stages, each with its typed arguments, the result paths it reads and writes and whether it is
done, built from a study (:mod:`orchestration.study`), the experiment grid and one results layout
(:class:`infra.layout.ResultsLayout`).

    python -m orchestration.plan table1_pruning llama-3.1-8b-instruct          # run what is not done
    PLAN=1 python -m orchestration.plan paper llama-3.1-8b-instruct            # the whole graph, run nothing
    STUDY=toy python -m orchestration.plan paper toy-llama --jobs 2            # two stages side by side
    python -m orchestration.plan --list                                        # the plans

The scripts (``scripts/<plan>.sh``) are this call under their ``#SBATCH`` headers; ``PLAN=1`` prints the same
graph, :mod:`orchestration.slurm` submits it and :mod:`orchestration.gpu_hours` estimates it. ``paper`` is
every artifact's stages, each planned once; an artifact's plan is its stages and their ancestors in it. A
complete stage (its manifest is present) is reported as ``[skip] <output>``, so rerunning resumes.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from infra.config import ConfigError, load_yaml
from infra.experiments import Experiments, Run, load_experiments
from infra.layout import PROBE_RESULT, ResultsLayout, unscored_layers
from infra.model_spec import load_model_spec
from infra.paths import REPO_ROOT
from infra.task_registry import registry
from orchestration.graph import Graph, PlanError, Search, Stage
from orchestration.study import Study, dataset_variable, load_study

LOCAL_MODEL = re.compile(r"^(/|\./|\.\./|\.cache/|outputs/)")

__all__ = ["Plan", "PlanError", "PLANS", "plan_stages", "main"]


def stage_default(module: str, dataclass_name: str, name: str) -> Any:
    """A stage's own default (its CLI dataclass field), so that the plan passes the value the stage uses."""
    import importlib

    cls = getattr(importlib.import_module(module), dataclass_name)
    for item in fields(cls):
        if item.name == name:
            return item.default
    raise KeyError(f"{module}.{dataclass_name} has no field {name!r}")


def launcher_processes(launcher: list[str]) -> int:
    """How many processes (GPUs) a launch line starts: ``accelerate launch`` (``--num_processes`` or its
    ``--config_file``'s ``num_processes``), ``torchrun --nproc_per_node``; plain ``python`` one."""

    def value(name: str) -> str | None:
        for i, word in enumerate(launcher):
            if word == name and i + 1 < len(launcher):
                return launcher[i + 1]
            if word.startswith(f"{name}="):
                return word.split("=", 1)[1]
        return None

    if Path(launcher[0]).name == "torchrun" or launcher[:3] == ["python", "-m", "torch.distributed.run"]:
        count = value("--nproc_per_node") or value("--nproc-per-node")
        if count is None or not count.isdigit():
            raise PlanError(f"FULL_LAUNCH={' '.join(launcher)!r}: give torchrun --nproc_per_node N")
        return int(count)
    if Path(launcher[0]).name == "accelerate" and "launch" in launcher[1:2]:
        count = value("--num_processes")
        if count is None:
            config = value("--config_file")
            if config is None:
                raise PlanError(f"FULL_LAUNCH={' '.join(launcher)!r}: give --config_file or --num_processes")
            count = str((load_yaml(REPO_ROOT / config) or {}).get("num_processes", 1))
        return int(count)
    return 1


class Plan:
    """The stages of one model's study, in one :class:`Graph`, built by the stage methods below (each
    mirrors one stage of the pipeline, skips what is complete and plans an output once)."""

    def __init__(self, model_config: str, study: Study):
        self.study = study
        if not model_config:
            known = " ".join(sorted(p.stem for p in (REPO_ROOT / "configs" / "models").glob("*.yaml")))
            raise PlanError(f"give a model config name (one of: {known})")
        if not (REPO_ROOT / "configs" / "models" / f"{model_config}.yaml").is_file():
            raise PlanError(f"configs/models/{model_config}.yaml: no such model config")
        self.experiments_path = study.experiments
        grid = load_experiments(REPO_ROOT / study.experiments)
        self.experiments: Experiments = grid.resolved(model_config, study.extras).narrowed(**study.narrowing)
        self.spec = load_model_spec(model_config)
        self.model_config = model_config
        self.model = study.model_path or self.spec.hub_id
        if LOCAL_MODEL.match(self.model) and not (REPO_ROOT / self.model / "config.json").is_file():
            if not study.build_model:
                raise PlanError(
                    f"missing model directory {self.model} (model config {model_config}; set MODEL_PATH, or "
                    "build the toy model with python -m infra.study_models.toy_model)"
                )
        self.num_layers = self.spec.num_layers
        # Block influence, the search and the sweep in the model's own dtype (bf16 for the paper models), as
        # the original's notebook and vLLM engines ran them.
        self.dtype = study.prune_dtype or self.spec.dtype
        self.results = f"{study.out}/{model_config}"
        self.layout = ResultsLayout(self.results)
        self.tasks = list(study.tasks or registry().eval_tasks)
        self.cal_tasks = list(study.cal_tasks or registry().search_tasks)
        self.classify = study.classify
        self.max_new_tokens = study.max_new_tokens or stage_default(
            "eval.generative", "GenerativeArgs", "max_new_tokens"
        )
        self.graph = Graph()
        self.pair: dict[str, str] | None = None  # a released pair (plan released_pair)

    # --- bookkeeping ---------------------------------------------------------------------------------------
    @property
    def stages(self) -> list[Stage]:
        return self.graph.stages

    @property
    def lines(self) -> list[str]:
        return self.graph.text()

    def pending(self, output: str, done: bool) -> bool:
        return self.graph.pending(output, done)

    def add(self, stage: Stage) -> Stage:
        return self.graph.add(stage)

    def seed_args(self) -> list[tuple[str, Any]]:
        return [("--seed", self.study.seed)] if self.study.seed is not None else []

    def gen_batch_args(self, flag: str = "--batch_size") -> list[tuple[str, Any]]:
        return [(flag, self.study.gen_batch)] if self.study.gen_batch is not None else []

    def task_data_args(self) -> list[tuple[str, Any]]:
        return [("--data", entry) for entry in self.study.task_data]

    def calibration_args(self) -> list[tuple[str, Any]]:
        """BI and angular calibration texts (unset: layer_pruner.prune's defaults), for the pruner and the BI
        profile alike."""
        s = self.study
        return [
            ("--calibration", s.calibration or stage_default("layer_pruner.prune", "PruneArgs", "calibration")),
            ("--n_calibration", s.n_calibration or stage_default("layer_pruner.prune", "PruneArgs", "n_calibration")),
        ]  # fmt: skip

    # --- datasets --------------------------------------------------------------------------------------------
    def dataset_source(self, name: str) -> str:
        """The hub id or file a dataset name stands for: the study's, else the grid's source."""
        if name not in self.experiments.datasets:
            raise PlanError(f"{self.experiments.path}: no key 'datasets.{name}.epochs'")
        return self.study.datasets.get(name) or self.experiments.datasets[name].source

    def require_datasets(self, *names: str) -> None:
        for name in names:
            source = self.dataset_source(name)
            local = source.endswith((".jsonl", ".json", ".parquet", ".gz"))
            if local and not (REPO_ROOT / source).exists() and not self.study.build_model:
                raise PlanError(f"missing input {source} ({dataset_variable(name)})")

    def check_recoveries(self, runs: list[Run]) -> None:
        for run in runs:
            if run.recovery is not None:
                self.require_datasets(run.data)

    def runs(self, artifact: str) -> list[Run]:
        """The artifact's runs, resolved for this model and narrowed as the study says (as
        ``analysis.build_artifacts`` reads them), checked before any stage is planned."""
        for value in self.study.recoveries:
            if not re.match(r"^(none|(sft|sgr)-[a-z0-9_]+)$", value):
                raise PlanError(f"recovery {value}: expected none, sft-<dataset> or sgr-<dataset>")
        if artifact not in self.experiments.artifacts:
            raise PlanError(self.not_in_grid(artifact))
        runs = self.experiments.grid(artifact).runs(self.experiments.recipe)
        self.check_recoveries(runs)
        return runs

    def not_in_grid(self, artifact: str) -> str:
        """Why an artifact has no runs for this model: which models the grid runs it for."""
        grid = load_experiments(REPO_ROOT / self.study.experiments)
        if artifact not in grid.artifacts:
            return f"{grid.path}: no artifact {artifact!r}"
        models = sorted({m for b in grid.grid(artifact).blocks if not b.extra for m in b.models})
        where = f" (the paper shows it for {', '.join(models)})" if models else ""
        return f"{grid.path}: {artifact} has no runs for {self.model_config}{where}"

    # --- stages ----------------------------------------------------------------------------------------------
    def amount_args(self, amount: str) -> list[tuple[str, Any]]:
        if amount.endswith("pct"):
            return [("--ratio", int(amount[:-3]) / 100)]
        if amount.endswith("layers"):
            return [("--n", int(amount[: -len("layers")]))]
        raise PlanError(f"pruning amount {amount}: expected <percent>pct or <count>layers")

    def prune(
        self, method: str, amount: str, target: str | None = None, cal_tasks: list[str] | None = None
    ) -> str:
        s = self.study
        target = target or self.layout.pruned_model(method, amount)
        if not self.pending(target, self.layout.done(target)):
            return target
        amount_args = self.amount_args(amount)
        cal_items = s.cal_items or registry().items["search"]
        args = [
            ("--model", self.model), ("--model_config", self.model_config), ("--method", method), *amount_args,
            ("--output_dir", target), ("--overwrite", None), ("--dtype", self.dtype), *self.calibration_args(),
            ("--tasks", cal_tasks or self.cal_tasks), ("--n_items", cal_items),
            ("--max_new_tokens", self.max_new_tokens), ("--backend", s.backend), *self.task_data_args(),
            *self.seed_args(), *self.gen_batch_args("--gen_batch_size"),
        ]  # fmt: skip
        search = None
        inputs = [self.model]
        cost: dict[str, Any] = {"kind": "prune", "method": method}
        if method == "iterative":
            tasks = list(cal_tasks or self.cal_tasks)
            if s.shared_search:  # the first n layers of the model's one search on these tasks
                search_dir = self.search(tasks)
                args.append(("--search_dir", search_dir))
                inputs.append(search_dir)
                cost["search_dir"] = search_dir
            else:  # its own search (on SLURM: one array per step, orchestration.slurm_jobs)
                search = Search(self.num_layers, self.removed(amount))
                cost.update(tasks=tasks, items=cal_items)
        self.add(Stage("layer_pruner.prune", args, [target], inputs, search=search, cost=cost))
        return target

    def removed(self, amount: str) -> int:
        """How many layers an amount removes from this model."""
        from layer_pruner.plan import layers_to_remove

        flag, value = self.amount_args(amount)[0]
        return layers_to_remove(self.num_layers, **({"n": value} if flag == "--n" else {"ratio": value}))

    def search_steps(self, tasks: list[str]) -> int:
        """The steps of the model's search on ``tasks``: the largest iterative amount any run of the grid
        (or the upper bound, on its own tasks) takes from it."""
        amounts = []
        if tasks == self.cal_tasks:
            amounts += [
                run.amount
                for grid in self.experiments.artifacts.values()
                for run in grid.runs(self.experiments.recipe)
                if run.method == "iterative"
            ]
        ub = self.experiments.upper_bound
        if (
            ub is not None
            and ub.method == "iterative"
            and list(self.study.upper_bound_search_tasks or ub.search_tasks) == tasks
        ):
            amounts.append(ub.amount)
        return max((self.removed(amount) for amount in amounts), default=1)

    def search(self, tasks: list[str]) -> str:
        """``search/iterative-<tasks>``: the greedy search on ``tasks``, once for every amount (its order's
        first n layers are each amount's)."""
        from layer_pruner.iterative import search_done

        s = self.study
        target = self.layout.search_dir(tasks)
        steps = self.search_steps(tasks)
        if not self.pending(target, search_done(REPO_ROOT / target, steps)):
            return target
        cal_items = s.cal_items or registry().items["search"]
        args = [
            ("--model", self.model), ("--model_config", self.model_config), ("--steps", steps),
            ("--output_dir", target), ("--dtype", self.dtype), ("--tasks", tasks), ("--n_items", cal_items),
            ("--max_new_tokens", self.max_new_tokens), ("--backend", s.backend), *self.task_data_args(),
            *self.seed_args(), *self.gen_batch_args("--gen_batch_size"),
        ]  # fmt: skip
        cost = {"kind": "search", "tasks": tasks, "items": cal_items}
        self.add(
            Stage(
                "layer_pruner.search",
                args,
                [target],
                [self.model],
                search=Search(self.num_layers, steps),
                cost=cost,
            )
        )
        return target

    def eval(self, run_dir: str, model: str, adapter: str | None = None) -> None:
        """``<run dir>/eval``: the generative tasks missing there, and the classification tasks (classify: all;
        unrecovered: not for fine-tuned runs)."""
        s = self.study
        target = f"{run_dir}/eval"
        missing = [task for task in self.tasks if not (REPO_ROOT / target / f"{task}.json").is_file()]
        classify = self.classify == "all" or (
            self.classify == "unrecovered" and not target.startswith(f"{self.results}/recovered/")
        )
        if (REPO_ROOT / target / "classification" / "classification.json").is_file():
            classify = False
        if not self.pending(target, not missing and not classify):
            return
        adapter_args = [("--adapter", adapter)] if adapter else []
        inputs = [model, *([adapter] if adapter else [])]
        if missing:
            self.generative(target, model, adapter, missing)
        if classify:
            limit = (
                s.cls_limit
                if s.cls_limit is not None
                else stage_default("eval.classification", "ClassificationArgs", "limit")
            )
            optional = [
                ("--tasks", s.cls_tasks), ("--include_path", s.cls_include), ("--num_fewshot", s.cls_fewshot),
                ("--dtype", s.cls_dtype),
            ]  # fmt: skip
            args = [
                ("--model", model), *adapter_args, ("--limit", limit),
                *[(flag, value) for flag, value in optional if value is not None],
                ("--output_dir", f"{target}/classification"),
            ]  # fmt: skip
            cost = {"kind": "classification", "limit": limit}
            self.add(Stage("eval.classification", args, [f"{target}/classification"], inputs, cost=cost))

    def prepare_data(self, dataset: str) -> str:
        """``data/<dataset>.prompts.jsonl``: sampled and length-filtered prompts (dataset responses kept)."""
        s = self.study
        target = self.layout.prompts(dataset)
        self.require_datasets(dataset)
        if self.pending(target, self.layout.file_done(target)):
            spec = self.experiments.datasets[dataset]
            limit = s.sft_limit or spec.limit
            args = [
                ("--dataset", self.dataset_source(dataset)), ("--output", target), ("--name", dataset),
                *([("--hub_config", spec.hub_config)] if spec.hub_config else []),
                *([("--limit", limit)] if limit else []),
                *([("--max_length", max_length)] if (max_length := s.sft_max_length or self.experiments.max_length) else []),
                ("--model", self.model), ("--model_config", self.model_config),
                ("--seed", self.experiments.seed),
            ]  # fmt: skip
            cost = {"kind": "prepare", "dataset": dataset}
            self.add(Stage("self_generate.prepare", args, [target], [self.model], cost=cost))
        return target

    def self_generate(self, dataset: str, samples: int = 1) -> str:
        """``data/<dataset>.sgr[<n>].jsonl``: the unpruned model's answers to the prepared prompts."""
        s = self.study
        prompts = self.prepare_data(dataset)
        target = self.layout.sgr(dataset, samples)
        if self.pending(target, self.layout.file_done(target)):
            context = s.sgr_context or stage_default("self_generate.generate", "GenerateArgs", "max_context")
            args = [
                ("--model", self.model), ("--model_config", self.model_config), ("--prompts", prompts),
                ("--output", target), ("--n", samples), ("--max_new_tokens", s.sgr_max_new_tokens or self.max_new_tokens),
                ("--max_context", context), ("--backend", s.backend), *self.seed_args(), *self.gen_batch_args(),
            ]  # fmt: skip
            cost = {"kind": "self_generate", "dataset": dataset, "samples": samples, "limit": s.sft_limit}
            self.add(Stage("self_generate.generate", args, [target], [self.model, prompts], cost=cost))
        return target

    def fine_tune(self, recipe: str, model: str, data: str, output_dir: str, dataset: str) -> None:
        s = self.study
        if not self.pending(output_dir, self.layout.done(output_dir)):
            return
        launcher = list(s.full_launch) if recipe == "full" else ["python"]
        spec = self.experiments.datasets[dataset]
        steps = [("--max_steps", spec.steps_as_run)] if s.steps == "as_run" and spec.steps_as_run else []
        # The recipe's global batch (full: 8 over any number of processes), shown in the plan.
        from train.recipe import recipe_path

        global_batch = (load_yaml(recipe_path(recipe)) or {}).get("global_batch_size")
        args = [
            ("--recipe", recipe), ("--model", model), ("--model_config", self.model_config), ("--data", data),
            ("--output_dir", output_dir), ("--num_train_epochs", spec.epochs),
            *([("--global_batch_size", global_batch)] if global_batch else []), *steps, *self.seed_args(),
        ]  # fmt: skip
        args += self.held_out_args(output_dir)
        # The study's train.sft settings, then TRAIN_FLAGS (later flags win, as on the command line).
        args += [(f"--{key}", value) for key, value in s.train.items()] + flag_pairs(s.train_flags)
        cost = {
            "kind": "train",
            "dataset": dataset,
            "recipe": recipe,
            "epochs": spec.epochs,
            "limit": s.sft_limit or spec.limit,
            "samples": int(re.search(r"\.sgr(\d*)\.jsonl$", data).group(1) or 1) if ".sgr" in data else 1,
        }
        self.add(
            Stage(
                "train.sft",
                args,
                [output_dir],
                [model, data],
                launcher=launcher,
                processes=launcher_processes(launcher),
                cost=cost,
            )
        )

    def held_out_args(self, output_dir: str) -> list[tuple[str, Any]]:
        """Held-out evaluation as the grid says: once per epoch on a capped set, a curve for Figure 5's runs
        (HELD_OUT=steps: every 50 steps on the whole split from step 0, as planned before)."""
        if self.study.held_out == "steps":
            return [("--eval_strategy", "steps"), ("--eval_steps", 50), ("--eval_at_start", True)]
        held_out = self.experiments.held_out
        if held_out is None:
            return []
        cap = [("--eval_max_examples", held_out.max_examples)] if held_out.max_examples else []
        if output_dir in self.curve_runs():
            return [
                ("--eval_strategy", "steps"),
                ("--eval_steps", held_out.curve_eval_steps),
                ("--eval_at_start", True),
                *cap,
            ]
        return [("--eval_strategy", "epoch"), ("--eval_at_start", False), *cap]

    def curve_runs(self) -> set[str]:
        """The fine-tuning directories whose held-out loss is drawn as a curve (Figure 5's runs)."""
        held_out = self.experiments.held_out
        if held_out is None or held_out.curve_artifact not in self.experiments.artifacts:
            return set()
        runs = self.experiments.grid(held_out.curve_artifact).runs(self.experiments.recipe)
        return {f"{self.layout.recovered_run(run.name)}/train" for run in runs if run.recovery}

    def eval_trained(self, run_dir: str, pruned: str, recipe: str) -> None:
        if recipe == "full":
            self.eval(run_dir, f"{run_dir}/train/model")
        else:
            self.eval(run_dir, pruned, f"{run_dir}/train/adapter")

    def run_stages(self, run: Run) -> tuple[str, str | None]:
        """One run of a grid: prune; for no recovery evaluate; for ``<sft|sgr>-<dataset>`` fine-tune the pruned
        model with the recipe on the dataset's (sft) or the unpruned model's (sgr) responses, evaluate.
        Returns the run's model and adapter (None for a full model)."""
        pruned = self.prune(run.method, run.amount)
        if run.recovery is None:
            self.eval(self.layout.pruned_run(run.method, run.amount), pruned)
            return pruned, None
        data = self.self_generate(run.data) if run.recovery == "sgr" else self.prepare_data(run.data)
        directory = self.layout.recovered_run(run.name)
        recipe = run.recipe_or(self.experiments.recipe)
        self.fine_tune(recipe, pruned, data, f"{directory}/train", run.data)
        self.eval_trained(directory, pruned, recipe)
        if recipe == "full":
            return f"{directory}/train/model", None
        return pruned, f"{directory}/train/adapter"

    def run_grid(self, runs: list[Run], after: Callable[[Run, str, str | None], None] | None = None) -> None:
        """Every run of ``runs`` (:meth:`runs`); ``after(run, model, adapter)`` follows each."""
        for run in runs:
            model, adapter = self.run_stages(run)
            if after is not None:
                after(run, model, adapter)

    def probe_items(self) -> int:
        """The unpruned model's probe's items (Figure 3's; the study's, else the stage's 200)."""
        return self.study.probe_items or stage_default("analysis.arithmetic_probe", "ProbeArgs", "n_items")

    def probe(
        self,
        run: str,
        model: str,
        adapter: str | None = None,
        layers: str | None = None,
        items: int | None = None,
        skip: int = 0,
        inputs: tuple[str, ...] = (),
    ) -> None:
        s = self.study
        target = self.layout.probe_dir(run)
        if not self.pending(target, self.layout.done(target)):
            return
        items = items or self.probe_items()
        args = [
            ("--model", model), *([("--adapter", adapter)] if adapter else []), ("--output_dir", target),
            ("--n_items", items), *([("--skip_items", skip)] if skip else []),
            *([("--data", s.probe_data)] if s.probe_data else []),
            *([("--seed", s.probe_seed)] if s.probe_seed is not None else []),
            ("--ablate_layers", layers or "none"), ("--dtype", self.dtype),
        ]  # fmt: skip
        ablated = self.num_layers if layers == "all" else 1 if layers and layers != "none" else 0
        cost = {"kind": "probe", "items": items - skip, "ablations": ablated}
        sources = [model, *([adapter] if adapter else []), *inputs]
        self.add(Stage("analysis.arithmetic_probe", args, [target], sources, cost=cost))

    def critical_probe(self) -> None:
        """Finding 6: the layer whose ablation drops the unpruned model's probe most, chosen on that probe's
        items, measured against the unpruned model on fresh items (the sample's next ones)."""
        fresh = self.study.critical_probe_items
        if fresh:
            chosen = self.layout.probe_dir("base")
            layers = f"critical:{chosen}/{PROBE_RESULT}"
            self.probe(
                "critical",
                self.model,
                None,
                layers,
                self.probe_items() + fresh,
                self.probe_items(),
                (chosen,),
            )

    def sweep(self) -> None:
        """The single-layer sweep of the study's layers [1..L-1] (on SLURM an array, a task a layer)."""
        s = self.study
        layers = list(s.sweep_layers or range(1, self.num_layers))
        target = self.layout.sweep_dir
        # Complete when its manifest is there and each of these layers is scored (a sweep over fewer layers
        # wrote the manifest).
        scored = not unscored_layers(REPO_ROOT / target, layers)
        if not self.pending(target, self.layout.done(target) and scored):
            return
        items = s.n_items
        args = [
            ("--model", self.model), ("--model_config", self.model_config), ("--output_dir", target),
            ("--dtype", self.dtype), ("--layers", layers), ("--tasks", self.cal_tasks),
            *([("--n_items", items)] if items is not None else []), ("--max_new_tokens", self.max_new_tokens),
            ("--backend", s.backend), *self.task_data_args(), *self.gen_batch_args("--gen_batch_size"),
        ]  # fmt: skip
        cost = {"kind": "sweep", "tasks": self.cal_tasks, "items": items or registry().items["search"]}
        self.add(Stage("layer_pruner.sweep", args, [target], [self.model], layers=layers, cost=cost))

    def bi_profile(self) -> None:
        target = self.layout.bi_profile_dir
        if self.pending(target, self.layout.done(target)):
            args = [
                ("--model", self.model), ("--output_dir", target), ("--dtype", self.dtype), *self.calibration_args()
            ]  # fmt: skip
            self.add(Stage("analysis.bi_profile", args, [target], [self.model], cost={"kind": "calibration"}))

    def generative(
        self, target: str, model: str, adapter: str | None, tasks: list[str], greedy: bool = False
    ) -> None:
        """``eval.generative`` of ``tasks`` into ``target`` (greedy: temperature 0, the toy model's mastery)."""
        s = self.study
        args = [
            ("--model", model), *([("--adapter", adapter)] if adapter else []), ("--model_config", self.model_config),
            ("--tasks", tasks), *([("--max_items", s.items)] if s.items is not None else []),
            ("--max_new_tokens", self.max_new_tokens), *([("--temperature", 0)] if greedy else []),
            ("--backend", s.backend), *self.task_data_args(), *self.seed_args(), *self.gen_batch_args(),
            ("--output_dir", target),
        ]  # fmt: skip
        inputs = [model, *([adapter] if adapter else [])]
        self.add(
            Stage(
                "eval.generative",
                args,
                [target],
                inputs,
                cost={"kind": "eval", "tasks": tasks, "items": s.items},
            )
        )

    def greedy(self) -> None:
        """The unpruned model's greedy mastery of the tasks (the toy study: the study samples at 0.9)."""
        target = self.layout.greedy
        if self.pending(target, self.layout.done(target)):
            self.generative(target, self.model, None, self.tasks, greedy=True)

    def build(self, artifacts: list[str] | None) -> None:
        """The tables and figures from the results (``artifacts``: these only; None: all)."""
        narrowing = [(f"--{key}", values) for key, values in self.study.narrowing.items()]
        args = [
            ("--results", self.results), ("--output_dir", self.layout.artifacts),
            ("--experiments", self.experiments_path), ("--model_config", self.model_config),
            *([("--only", artifacts)] if artifacts else []), *narrowing,
            *([("--extras", self.study.extras)] if self.study.extras else []),
        ]  # fmt: skip
        self.add(
            Stage(
                "analysis.build_artifacts",
                args,
                [self.layout.artifacts],
                [self.results],
                cost={"kind": "build"},
            )
        )


def flag_pairs(words: list[str]) -> list[tuple[str, Any]]:
    """Command-line words as ``(flag, value)`` pairs (a flag followed by a flag stands alone)."""
    pairs: list[tuple[str, Any]] = []
    for word in words:
        if word.startswith("--") or not pairs or pairs[-1][1] is not None:
            pairs.append((word, None))
        else:
            pairs[-1] = (pairs[-1][0], word)
    return pairs


# --- the plans: one per experiment script (scripts/<name>.sh), and the whole graph ------------------------
# Each plan function adds its artifact's stages (no build); PLANS adds the build of the artifacts it makes.
def grid_stages(artifact: str, base: bool = True) -> Callable[[Plan], None]:
    """An artifact of grid runs: the unpruned model's scores (``base``), every run."""

    def stages(p: Plan) -> None:
        runs = p.runs(artifact)
        if base:
            p.eval(p.layout.base_run, p.model)
        p.run_grid(runs)

    stages.__doc__ = (
        f"{artifact}: the unpruned model's scores{'' if base else ' (not needed)'}, every run of its grid."
    )
    return stages


def figure7_stages(p: Plan) -> None:
    """Figure 7: the probe of the unpruned model with each layer ablated (ABLATE [all]), then of each run."""
    runs = p.runs("figure_7")
    p.probe("base", p.model, None, p.study.ablate)
    items = p.study.figure_7_probe_items or p.experiments.probe_items.get("figure_7") or p.study.probe_items
    if items and items > p.probe_items():  # more items than Figure 3's probe has: the unpruned model alone
        p.probe("unablated", p.model, None, "none", items=items)
    p.run_grid(runs, after=lambda run, model, adapter: p.probe(run.name, model, adapter, items=items))


def figure12_stages(p: Plan) -> None:
    """Figure 12: full fine-tuning against LoRA on the grid's tasks (FIGURE12_TASKS), no classification."""
    runs = p.runs("figure_12")
    tasks, classify = p.tasks, p.classify
    p.tasks = list(p.study.figure12_tasks or p.experiments.grid("figure_12").tasks)
    p.classify = "none"
    p.eval(p.layout.base_run, p.model)
    p.run_grid(runs)
    p.tasks, p.classify = tasks, classify


def sweep_stages(p: Plan) -> None:
    """Figures 1-4: each layer removed alone, the probe over every layer, the BI profile."""
    p.sweep()
    p.probe("base", p.model, None, "all")
    p.critical_probe()
    p.bi_profile()


def upper_bound_stages(p: Plan) -> None:
    """The GSM8K upper bound (appendix A.6.2, Figure 11): a model pruned by the search on GSM8K, fine-tuned on
    SAMPLES of the unpruned model's answers per prompt with each recipe."""
    s = p.study
    ub = p.experiments.upper_bound
    if ub is None:
        full = load_experiments(REPO_ROOT / p.study.experiments).upper_bound
        models = f" (the paper ran it for {', '.join(full.models)})" if full and full.models else ""
        raise PlanError(f"{p.experiments.path}: no upper bound for {p.model_config}{models}")
    samples = s.samples or ub.samples
    recipes = s.recipes or list(ub.recipes)
    p.require_datasets(ub.dataset)
    tasks, classify = p.tasks, p.classify
    p.tasks = list(s.upper_bound_tasks or ub.tasks)
    p.classify = "none"
    pruned = p.layout.upper_bound_pruned
    p.eval(p.layout.base_run, p.model)
    p.prune(
        ub.method, ub.amount, f"{pruned}/model", cal_tasks=list(s.upper_bound_search_tasks or ub.search_tasks)
    )
    p.eval(pruned, f"{pruned}/model")
    data = p.self_generate(ub.dataset, samples)
    for recipe in recipes:
        run = p.layout.upper_bound_run(samples, recipe)
        p.fine_tune(recipe, f"{pruned}/model", data, f"{run}/train", ub.dataset)
        p.eval_trained(run, f"{pruned}/model", recipe)
    p.tasks, p.classify = tasks, classify


RELEASED_DIR = REPO_ROOT / "configs" / "released"


def load_pair(name: str) -> dict[str, str]:
    """A released pair (configs/released/<name>.yaml, or a YAML file's path): name, model_config, parent,
    pruned."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else RELEASED_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RELEASED_DIR.glob("*.yaml")))
        raise PlanError(
            f"{path.parent}: no released pair named {path.stem!r} (a pair's name, not a model's; known: {known})"
        )
    pair = load_yaml(path)
    missing = {"name", "model_config", "parent", "pruned"} - set(pair)
    if missing:
        raise PlanError(f"{path}: missing key {sorted(missing)[0]!r}")
    return pair


def released_pair_stages(p: Plan) -> None:
    """A released depth-pruned model against its parent: both evaluated on the generative tasks and probed on
    arithmetic, the pruned model's answers' degeneration against the parent's."""
    pair = p.pair
    classify, p.classify = p.classify, "none"
    runs = {}
    for which in ("parent", "pruned"):
        run_dir = p.layout.released(pair["name"], which)
        p.eval(run_dir, pair[which])
        target = f"{run_dir}/probe"
        if p.pending(target, p.layout.done(target)):
            items = p.study.probe_items or stage_default("analysis.arithmetic_probe", "ProbeArgs", "n_items")
            args = [("--model", pair[which]), ("--output_dir", target), ("--n_items", items),
                    *([("--data", p.study.probe_data)] if p.study.probe_data else []),
                    ("--ablate_layers", "none"), ("--dtype", p.dtype)]  # fmt: skip
            p.add(
                Stage(
                    "analysis.arithmetic_probe",
                    args,
                    [target],
                    [pair[which]],
                    cost={"kind": "probe", "items": items, "ablations": 0},
                )
            )
        runs[which] = run_dir
    for task in p.tasks:
        target = f"{runs['pruned']}/degeneration/{task}.json"
        if p.pending(target, (REPO_ROOT / target).is_file()):
            args = [("--items", f"{runs['pruned']}/eval/{task}.jsonl"), ("--baseline", f"{runs['parent']}/eval/{task}.jsonl"),
                    ("--labels", "pruned"), ("--output", target)]  # fmt: skip
            p.add(
                Stage(
                    "analysis.degeneration",
                    args,
                    [target],
                    [f"{runs['pruned']}/eval", f"{runs['parent']}/eval"],
                    cost={"kind": "build"},
                )
            )
    p.classify = classify


# name -> (stages, the artifacts its build makes)
ARTIFACT_PLANS: dict[str, tuple[Callable[[Plan], None], list[str]]] = {
    "table1_pruning": (grid_stages("table_1"), ["table_1"]),
    "table2_recovery": (grid_stages("table_2"), ["table_2"]),
    "table4_lora": (grid_stages("table_4"), ["table_4"]),
    "table6_ratios": (grid_stages("table_6"), ["table_6", "figure_6"]),
    "figure5_perplexity": (grid_stages("figure_5", base=False), ["figure_5"]),
    "figure7_arithmetic": (figure7_stages, ["figure_7"]),
    "figure8_code": (grid_stages("figure_8"), ["figure_8"]),
    "figure12_full_ft": (figure12_stages, ["figure_12"]),
    "figure14_sgr_vs_sft": (grid_stages("figure_14"), ["figure_14"]),
    "figures1-4_sweep": (sweep_stages, ["figure_1", "figure_2", "figure_3", "figure_4", "figure_bi_profile"]),
    "upper_bound": (upper_bound_stages, ["table_upper_bound", "figure_11"]),
    "released_pair": (released_pair_stages, ["released"]),
}
ARTIFACT_OF = {  # plan -> the grid artifact it runs (a plan whose grid a study lacks is left out of paper)
    "table1_pruning": "table_1",
    "table2_recovery": "table_2",
    "table4_lora": "table_4",
    "table6_ratios": "table_6",
    "figure5_perplexity": "figure_5",
    "figure7_arithmetic": "figure_7",
    "figure8_code": "figure_8",
    "figure12_full_ft": "figure_12",
    "figure14_sgr_vs_sft": "figure_14",
}


def in_grid(p: Plan, name: str) -> bool:
    if name in ARTIFACT_OF:
        return ARTIFACT_OF[name] in p.experiments.artifacts
    if name == "upper_bound":
        return p.experiments.upper_bound is not None
    if name == "released_pair":
        return p.pair is not None
    return True


def artifact_plan(name: str) -> Callable[[Plan], None]:
    stages, artifacts = ARTIFACT_PLANS[name]

    def plan(p: Plan) -> None:
        stages(p)
        p.build(artifacts)

    plan.__doc__ = stages.__doc__
    return plan


def paper(p: Plan) -> None:
    """Every artifact of the grid: each stage of every artifact script once, then one build of them all."""
    if p.study.greedy:
        p.greedy()
    for name, (stages, _) in ARTIFACT_PLANS.items():
        if in_grid(p, name):
            stages(p)
    p.build(None)


PLANS: dict[str, Callable[[Plan], None]] = {name: artifact_plan(name) for name in ARTIFACT_PLANS}
PLANS["paper"] = paper


def plan_stages(name: str, model_config: str, study: Study | None = None) -> Plan:
    """The plan ``name`` (a script's stem, or ``paper``) for a model config, under ``study``; for
    ``released_pair`` the second argument names the pair (configs/released), whose model config is used."""
    if name not in PLANS:
        raise PlanError(f"no plan {name!r} (known: {', '.join(PLANS)})")
    pair = None
    if name == "released_pair":
        if not model_config:
            known = ", ".join(sorted(p.stem for p in RELEASED_DIR.glob("*.yaml")))
            raise PlanError(f"give a released pair's name (one of: {known})")
        pair = load_pair(model_config)
        model_config = pair["model_config"]
    plan = Plan(model_config, study if study is not None else load_study())
    plan.pair = pair
    PLANS[name](plan)
    return plan


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--list"]:
        for name, function in PLANS.items():
            print(f"{name}: {(function.__doc__ or name).strip().splitlines()[0]}")
        return 0
    jobs: int | None = None
    if "--jobs" in argv:
        at = argv.index("--jobs")
        if at + 1 >= len(argv) or not argv[at + 1].isdigit():
            print("error: --jobs takes a number of lanes", file=sys.stderr)
            return 2
        jobs = int(argv[at + 1])
        del argv[at : at + 2]
    if len(argv) not in (1, 2) or argv[0].startswith("-"):
        print(
            "usage: python -m orchestration.plan <plan> <model config> [--jobs N]  (PLAN=1: print only; --list)",
            file=sys.stderr,
        )
        return 2
    planning = os.environ.get("PLAN", "0") == "1"
    try:
        study = load_study()
        if jobs is not None:
            study.jobs = jobs
        name = argv[0]
        model_config = (
            argv[1] if len(argv) == 2 else (os.environ.get("MODEL_CONFIG") or study.model_config or "")
        )
        plan = plan_stages(name, model_config, study)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"[study] {study.name}: {plan.model_config} ({plan.model}, {plan.num_layers} layers) -> {plan.results}"
        f"{' (plan only)' if planning else ''}",
        file=sys.stderr,
    )
    if planning:
        print("\n".join(plan.lines))
        return 0
    from orchestration.local import run_graph

    return run_graph(plan, study)


if __name__ == "__main__":
    sys.exit(main())
