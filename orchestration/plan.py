"""The experiments' stage plan: for a plan (an experiment script, or a stage the studies share) and a model
config, the ordered stages, each with its command, the result paths it reads and writes and whether it is
done, built from the experiment grid and one results layout (:class:`infra.layout.ResultsLayout`).

    python -m orchestration.plan table1_pruning llama-3.1-8b-instruct          # run what is not done
    PLAN=1 python -m orchestration.plan table1_pruning llama-3.1-8b-instruct   # print it, run nothing
    python -m orchestration.plan --list                                        # the plans

The experiment scripts (``scripts/<plan>.sh``) are this call under their ``#SBATCH`` headers, ``PLAN=1``
prints the same list, and :mod:`orchestration.slurm` submits it as jobs. A complete stage (its manifest is
present) is reported as ``[skip] <output>``, so rerunning resumes. The variables (``scripts/lib.sh`` lists
them) override single settings; unset, each stage's own default applies, read from its dataclass or the task
registry, so a default is written once.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from infra.config import ConfigError, load_yaml
from infra.experiments import Experiments, _shell, grid_points, load_experiments
from infra.layout import ResultsLayout
from infra.model_spec import load_model_spec
from infra.paths import REPO_ROOT
from infra.task_registry import registry

NARROWING = ("METHODS", "AMOUNTS", "RECOVERIES", "RECIPES")
LOCAL_MODEL = re.compile(r"^(/|\./|\.\./|\.cache/|outputs/)")


class PlanError(ConfigError):
    """A plan that cannot be made (a missing input, a bad variable); the message names it."""


def stage_default(module: str, dataclass_name: str, name: str) -> Any:
    """A stage's own default (its CLI dataclass field), so that the plan prints the value the stage uses."""
    import importlib

    cls = getattr(importlib.import_module(module), dataclass_name)
    for item in fields(cls):
        if item.name == name:
            return item.default
    raise KeyError(f"{module}.{dataclass_name} has no field {name!r}")


def shell_word(arg: str) -> str:
    return arg if re.fullmatch(r"[A-Za-z0-9_./:=,@+%-]+", arg) else shlex.quote(arg)


@dataclass
class Stage:
    """One stage command. ``outputs``/``inputs``: result paths it writes and reads (a SLURM job waits for the
    jobs writing its inputs). ``layers``: a sweep's layers (one array task each on SLURM)."""

    command: list[str]
    outputs: list[str]
    inputs: list[str] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)
    array_command: list[str] | None = None  # a sweep's command for one layer (an array task adds --layer)
    search: dict[str, Any] | None = None  # an iterative search: model_config, n, ratio

    @property
    def module(self) -> str:
        return (
            self.command[self.command.index("-m") + 1] if "-m" in self.command else Path(self.command[0]).name
        )

    def line(self) -> str:
        return " ".join(shell_word(arg) for arg in self.command)


@dataclass
class Settings:
    """The variables of the experiment scripts (``scripts/lib.sh``) as read from an environment."""

    env: Mapping[str, str]

    def get(self, name: str, default: Any = None) -> Any:
        value = self.env.get(name, "")
        return value if value != "" else default

    def words(self, name: str) -> list[str]:
        return self.get(name, "").split()

    def flag(self, flag: str, name: str) -> list[str]:
        """``[flag, $name]`` when the variable is set, else nothing (the stage's default)."""
        value = self.get(name)
        return [flag, value] if value is not None else []

    @property
    def narrowing(self) -> dict[str, list[str]]:
        return {
            var.lower(): self.get(var, "").replace(",", " ").split() for var in NARROWING if self.get(var)
        }

    def narrow_flags(self) -> list[str]:
        return [arg for key, values in self.narrowing.items() for arg in (f"--{key}", ",".join(values))]


class Plan:
    """The stages of one model's study, in order, built by the stage methods below (each mirrors one stage of
    the pipeline, skips what is complete and plans an output once)."""

    def __init__(self, model_config: str, env: Mapping[str, str] | None = None):
        self.settings = s = Settings(dict(os.environ if env is None else env))
        self.experiments_path = s.get("EXPERIMENTS", "configs/experiments/paper.yaml")
        self.experiments: Experiments = load_experiments(REPO_ROOT / self.experiments_path)
        if not model_config:
            known = " ".join(sorted(p.stem for p in (REPO_ROOT / "configs" / "models").glob("*.yaml")))
            raise PlanError(f"give a model config name (one of: {known})")
        if not (REPO_ROOT / "configs" / "models" / f"{model_config}.yaml").is_file():
            raise PlanError(f"configs/models/{model_config}.yaml: no such model config")
        self.spec = load_model_spec(model_config)
        self.model_config = model_config
        self.model = s.get("MODEL_PATH", self.spec.hub_id)
        if LOCAL_MODEL.match(self.model) and not (REPO_ROOT / self.model / "config.json").is_file():
            raise PlanError(
                f"missing model directory {self.model} (model config {model_config}; set MODEL_PATH, or build "
                "the toy model with python -m infra.study_models.toy_model)"
            )
        self.num_layers = self.spec.num_layers
        # Block influence, the search and the sweep in the model's own dtype (bf16 for the paper models), as
        # the original's notebook and vLLM engines ran them.
        self.dtype = s.get("PRUNE_DTYPE", self.spec.dtype)
        self.results = f"{s.get('OUT', 'outputs')}/{model_config}"
        self.layout = ResultsLayout(self.results)
        self.tasks = s.get("TASKS", ",".join(registry().eval_tasks))
        self.cal_tasks = s.get("CAL_TASKS", ",".join(registry().search_tasks))
        self.classify = s.get("CLASSIFY", "1")
        self.max_new_tokens = s.get(
            "MAX_NEW_TOKENS", str(stage_default("eval.generative", "GenerativeArgs", "max_new_tokens"))
        )
        self.backend = s.get("BACKEND", "auto")
        self.task_data = s.words("TASK_DATA")
        self.seed_flags = s.flag("--seed", "SEED")
        self.gen_batch_flags = s.flag("--batch_size", "GEN_BATCH")
        self.stages: list[Stage] = []
        self.lines: list[str] = []  # what PLAN=1 prints: stage commands and "[skip] <output>"
        self._planned: set[str] = set()

    # --- bookkeeping ---------------------------------------------------------------------------------------
    def pending(self, output: str, done: bool) -> bool:
        """Whether a stage still has to write ``output``; a complete one is reported, a planned one not
        planned twice."""
        if done:
            self.lines.append(f"[skip] {output}")
            return False
        if output in self._planned:
            return False
        self._planned.add(output)
        return True

    def add(self, stage: Stage) -> None:
        self.stages.append(stage)
        self.lines.append(stage.line())

    def calibration_flags(self) -> list[str]:
        """BI and angular calibration texts (CALIBRATION, N_CALIBRATION; unset: layer_pruner.prune's defaults),
        for the pruner and the BI profile alike."""
        s = self.settings
        return [
            "--calibration", s.get("CALIBRATION", stage_default("layer_pruner.prune", "PruneArgs", "calibration")),
            "--n_calibration", s.get("N_CALIBRATION", str(stage_default("layer_pruner.prune", "PruneArgs", "n_calibration"))),
        ]  # fmt: skip

    def grid_value(self, dotted: str, optional: bool = False) -> str:
        return _shell(self.experiments.get(dotted, optional))

    # --- datasets --------------------------------------------------------------------------------------------
    def dataset_var(self, name: str) -> str:
        return name.upper().replace("-", "_")

    def dataset_source(self, name: str) -> str:
        """The hub id or file a dataset name stands for: its variable, else the grid's source."""
        return self.settings.get(self.dataset_var(name)) or self.grid_value(f"datasets.{name}.source")

    def require_datasets(self, *names: str) -> None:
        for name in names:
            source = self.dataset_source(name)
            if source.endswith((".jsonl", ".json", ".parquet", ".gz")) and not (REPO_ROOT / source).exists():
                raise PlanError(f"missing input {source} ({self.dataset_var(name)})")

    def check_recoveries(self, recoveries: list[str]) -> None:
        for recovery in recoveries:
            if recovery == "none":
                continue
            if not re.match(r"^(sft|sgr)-", recovery):
                raise PlanError(f"recovery {recovery}: expected none, sft-<dataset> or sgr-<dataset>")
            self.grid_value(f"datasets.{recovery.split('-', 1)[1]}.epochs")
            self.require_datasets(recovery.split("-", 1)[1])

    def points(self, artifact: str) -> list[tuple[str, str, str, str, str]]:
        """The artifact's runs (:func:`infra.experiments.grid_points`), narrowed as ``analysis.build_artifacts``
        narrows them, checked before any stage is planned."""
        only = self.settings.get("SPLIT_METHODS", "").replace(",", " ").split() or None
        points = grid_points(self.experiments, artifact, self.settings.narrowing, only)
        self.check_recoveries(sorted({point[3] for point in points}))
        return points

    # --- stages ----------------------------------------------------------------------------------------------
    def prune(
        self, method: str, amount: str, target: str | None = None, cal_tasks: str | None = None
    ) -> None:
        s = self.settings
        target = target or self.layout.pruned_model(method, amount)
        if not self.pending(target, self.layout.done(target)):
            return
        if amount.endswith("pct"):
            amount_flags = ["--ratio", str(int(amount[:-3]) / 100)]
        elif amount.endswith("layers"):
            amount_flags = ["--n", amount[: -len("layers")]]
        else:
            raise PlanError(f"pruning amount {amount}: expected <percent>pct or <count>layers")
        command = [
            "python", "-m", "layer_pruner.prune", "--model", self.model, "--model_config", self.model_config,
            "--method", method, *amount_flags, "--output_dir", target, "--overwrite", "--dtype", self.dtype,
            *self.calibration_flags(),
            "--tasks", cal_tasks or self.cal_tasks, "--n_items", s.get("CAL_ITEMS", str(registry().items["search"])),
            "--max_new_tokens", self.max_new_tokens, "--backend", self.backend, *self.task_data, *self.seed_flags,
            *s.flag("--gen_batch_size", "GEN_BATCH"),
        ]  # fmt: skip
        search = None
        if method == "iterative":  # on SLURM: one array per search step (orchestration.slurm_jobs)
            n, ratio = (
                (int(amount_flags[1]), None) if amount_flags[0] == "--n" else (None, float(amount_flags[1]))
            )
            search = {"model_config": self.model_config, "n": n, "ratio": ratio}
        self.add(Stage(command, [target], [self.model], search=search))

    def eval(self, run_dir: str, model: str, adapter: str | None = None) -> None:
        """``<run dir>/eval``: the generative tasks missing there, and the classification tasks (CLASSIFY=1;
        unrecovered: not for fine-tuned runs)."""
        s = self.settings
        target = f"{run_dir}/eval"
        missing = [
            task for task in self.tasks.split(",") if not (REPO_ROOT / target / f"{task}.json").is_file()
        ]
        classify = self.classify == "1" or (
            self.classify == "unrecovered" and not target.startswith(f"{self.results}/recovered/")
        )
        if (REPO_ROOT / target / "classification" / "classification.json").is_file():
            classify = False
        if not self.pending(target, not missing and not classify):
            return
        adapter_flags = ["--adapter", adapter] if adapter else []
        inputs = [model, *([adapter] if adapter else [])]
        if missing:
            command = [
                "python", "-m", "eval.generative", "--model", model, *adapter_flags,
                "--model_config", self.model_config, "--tasks", ",".join(missing), *s.flag("--max_items", "ITEMS"),
                "--max_new_tokens", self.max_new_tokens, "--backend", self.backend, *self.task_data,
                *self.seed_flags, *self.gen_batch_flags, "--output_dir", target,
            ]  # fmt: skip
            self.add(Stage(command, [target], inputs))
        if classify:
            limit = s.get(
                "CLS_LIMIT", str(stage_default("eval.classification", "ClassificationArgs", "limit"))
            )
            command = [
                "python", "-m", "eval.classification", "--model", model, *adapter_flags, "--limit", limit,
                *s.flag("--tasks", "CLS_TASKS"), *s.flag("--include_path", "CLS_INCLUDE"),
                *s.flag("--num_fewshot", "CLS_FEWSHOT"), *s.flag("--dtype", "CLS_DTYPE"),
                "--output_dir", f"{target}/classification",
            ]  # fmt: skip
            self.add(Stage(command, [f"{target}/classification"], inputs))

    def prepare_data(self, dataset: str) -> str:
        """``data/<dataset>.prompts.jsonl``: sampled and length-filtered prompts (dataset responses kept)."""
        s = self.settings
        target = self.layout.prompts(dataset)
        self.require_datasets(dataset)
        if self.pending(target, self.layout.file_done(target)):
            limit = s.get("SFT_LIMIT", self.grid_value(f"datasets.{dataset}.limit", optional=True))
            hub_config = self.grid_value(f"datasets.{dataset}.hub_config", optional=True)
            command = [
                "python", "-m", "self_generate.prepare", "--dataset", self.dataset_source(dataset),
                "--output", target, "--name", dataset, *(["--hub_config", hub_config] if hub_config else []),
                *(["--limit", limit] if limit else []),
                "--max_length", s.get("SFT_MAX_LENGTH", self.grid_value("fine_tuning.max_length")),
                "--model", self.model, "--model_config", self.model_config,
                "--seed", self.grid_value("fine_tuning.seed"),
            ]  # fmt: skip
            self.add(Stage(command, [target], [self.model]))
        return target

    def self_generate(self, dataset: str, samples: str = "1") -> str:
        """``data/<dataset>.sgr[<n>].jsonl``: the unpruned model's answers to the prepared prompts."""
        s = self.settings
        prompts = self.prepare_data(dataset)
        target = self.layout.sgr(dataset, samples)
        if self.pending(target, self.layout.file_done(target)):
            context = s.get(
                "SGR_CONTEXT", str(stage_default("self_generate.generate", "GenerateArgs", "max_context"))
            )
            command = [
                "python", "-m", "self_generate.generate", "--model", self.model, "--model_config",
                self.model_config, "--prompts", prompts, "--output", target, "--n", samples,
                "--max_new_tokens", self.max_new_tokens, "--max_context", context, "--backend", self.backend,
                *self.seed_flags, *self.gen_batch_flags,
            ]  # fmt: skip
            self.add(Stage(command, [target], [self.model, prompts]))
        return target

    def fine_tune(self, recipe: str, model: str, data: str, output_dir: str, dataset: str) -> None:
        s = self.settings
        if not self.pending(output_dir, self.layout.done(output_dir)):
            return
        launcher = s.get("FULL_LAUNCH", "python").split() if recipe == "full" else ["python"]
        steps: list[str] = []
        mode = s.get("STEPS", "paper")
        if mode == "as_run":
            as_run = self.grid_value(f"datasets.{dataset}.steps_as_run", optional=True)
            steps = ["--max_steps", as_run] if as_run else []
        elif mode != "paper":
            raise PlanError(
                f"STEPS={mode}: expected paper (the paper's epochs) or as_run (the original's merged checkpoint)"
            )
        # The recipe's global batch (full: 8 over any number of processes), shown in the plan.
        from train.recipe import recipe_path

        global_batch = (load_yaml(recipe_path(recipe)) or {}).get("global_batch_size")
        command = [
            *launcher, "-m", "train.sft", "--recipe", recipe, "--model", model, "--model_config",
            self.model_config, "--data", data, "--output_dir", output_dir,
            "--num_train_epochs", self.grid_value(f"datasets.{dataset}.epochs"),
            *(["--global_batch_size", str(global_batch)] if global_batch else []), *steps, *self.seed_flags,
            *s.words("TRAIN_FLAGS"),
        ]  # fmt: skip
        self.add(Stage(command, [output_dir], [model, data]))

    def eval_trained(self, run_dir: str, pruned: str, recipe: str) -> None:
        if recipe == "full":
            self.eval(run_dir, f"{run_dir}/train/model")
        else:
            self.eval(run_dir, pruned, f"{run_dir}/train/adapter")

    def point(
        self, name: str, method: str, amount: str, recovery: str, recipe: str
    ) -> tuple[str, str | None]:
        """One run of a grid: prune; for ``none`` evaluate; for ``<sft|sgr>-<dataset>`` fine-tune the pruned
        model with the recipe on the dataset's (sft) or the unpruned model's (sgr) responses, evaluate.
        Returns the run's model and adapter (None for a full model)."""
        pruned = self.layout.pruned_model(method, amount)
        self.prune(method, amount)
        if recovery == "none":
            self.eval(self.layout.pruned_run(method, amount), pruned)
            return pruned, None
        kind, dataset = recovery.split("-", 1)
        data = self.self_generate(dataset) if kind == "sgr" else self.prepare_data(dataset)
        run = self.layout.recovered_run(name)
        self.fine_tune(recipe, pruned, data, f"{run}/train", dataset)
        self.eval_trained(run, pruned, recipe)
        return (f"{run}/train/model", None) if recipe == "full" else (pruned, f"{run}/train/adapter")

    def run_grid(
        self,
        points: list[tuple[str, str, str, str, str]],
        after: Callable[[str, str, str | None], None] | None = None,
    ) -> None:
        """Every run of ``points`` (:meth:`points`); ``after(name, model, adapter)`` follows each."""
        for name, method, amount, recovery, recipe in points:
            model, adapter = self.point(name, method, amount, recovery, recipe)
            if after is not None:
                after(name, model, adapter)

    def probe(self, run: str, model: str, adapter: str | None = None, layers: str | None = None) -> None:
        s = self.settings
        target = self.layout.probe_dir(run)
        if not self.pending(target, self.layout.done(target)):
            return
        command = [
            "python", "-m", "analysis.arithmetic_probe", "--model", model,
            *(["--adapter", adapter] if adapter else []), "--output_dir", target,
            "--n_items", s.get("PROBE_ITEMS", str(stage_default("analysis.arithmetic_probe", "ProbeArgs", "n_items"))),
            *s.flag("--data", "PROBE_DATA"), *s.flag("--seed", "PROBE_SEED"), "--ablate_layers", layers or "none",
            "--dtype", self.dtype,
        ]  # fmt: skip
        self.add(Stage(command, [target], [model, *([adapter] if adapter else [])]))

    def build(self, artifacts: str | None) -> None:
        """The tables and figures from the results (BUILD=0: left to one build at the end, the toy study)."""
        if self.settings.get("BUILD", "1") != "1":
            return
        command = [
            "python", "-m", "analysis.build_artifacts", "--results", self.results, "--output_dir",
            self.layout.artifacts, "--experiments", self.experiments_path,
            *(["--only", artifacts] if artifacts else []), *self.settings.narrow_flags(),
        ]  # fmt: skip
        self.add(Stage(command, [self.layout.artifacts], [self.results]))


# --- the plans: one per experiment script (scripts/<name>.sh), and the stages the studies share -------------
def grid_plan(artifact: str, builds: str | None = None, base: bool = True) -> Callable[[Plan], None]:
    """An artifact of grid runs: the unpruned model's scores (``base``), every run, the artifact."""

    def plan(p: Plan) -> None:
        points = p.points(artifact)
        if base:
            p.eval(p.layout.base_run, p.model)
        p.run_grid(points)
        p.build(builds or artifact)

    plan.__doc__ = f"{artifact}: the unpruned model's scores{'' if base else ' (not needed)'}, every run of its grid, the artifact."
    return plan


def figure7_arithmetic(p: Plan) -> None:
    """Figure 7: the probe of the unpruned model with each layer ablated (ABLATE [all]), then of each run."""
    points = p.points("figure_7")
    p.probe("base", p.model, None, p.settings.get("ABLATE", "all"))
    p.run_grid(points, after=lambda name, model, adapter: p.probe(name, model, adapter))
    p.build("figure_7")


def figure12_full_ft(p: Plan) -> None:
    """Figure 12: full fine-tuning against LoRA on the grid's tasks (FIGURE12_TASKS), no classification."""
    points = p.points("figure_12")
    p.tasks = p.settings.get("FIGURE12_TASKS", ",".join(p.experiments.get("artifacts.figure_12.tasks")))
    p.classify = "0"
    p.eval(p.layout.base_run, p.model)
    p.run_grid(points)
    p.build("figure_12")


def _sweep_stage(p: Plan) -> bool:
    """The single-layer sweep of SWEEP_LAYERS [1..L-1] (an array task: its SLURM_ARRAY_TASK_ID); returns
    whether this is an array task, which scores its layer and stops."""
    s = p.settings
    layers = s.get("SWEEP_LAYERS", ",".join(str(i) for i in range(1, p.num_layers)))
    array_task = s.get("SLURM_ARRAY_TASK_ID")
    if array_task is not None:
        layers = array_task
    target = p.layout.sweep_dir
    if p.pending(target, p.layout.done(target)):
        command = [
            "python", "-m", "layer_pruner.sweep", "--model", p.model, "--model_config", p.model_config,
            "--output_dir", target, "--dtype", p.dtype, "--layers", layers, "--tasks", p.cal_tasks,
            *s.flag("--n_items", "N_ITEMS"), "--max_new_tokens", p.max_new_tokens, "--backend", p.backend,
            *p.task_data, *p.gen_batch_flags,
        ]  # fmt: skip
        at = command.index("--layers")
        p.add(
            Stage(
                command,
                [target],
                [p.model],
                layers=[int(x) for x in layers.split(",") if x],
                array_command=command[:at] + command[at + 2 :],
            )
        )
    return array_task is not None


def sweep(p: Plan) -> None:
    """Figures 1-4: each layer removed alone (SWEEP_LAYERS [1..L-1]; an array task: its SLURM_ARRAY_TASK_ID),
    the probe over every layer, the BI profile."""
    if _sweep_stage(p):
        return
    p.probe("base", p.model, None, "all")
    target = p.layout.bi_profile_dir
    if p.pending(target, p.layout.done(target)):
        command = [
            "python", "-m", "analysis.bi_profile", "--model", p.model, "--output_dir", target, "--dtype", p.dtype,
            *p.calibration_flags(),
        ]  # fmt: skip
        p.add(Stage(command, [target], [p.model]))
    p.build("figure_1,figure_2,figure_3,figure_4,figure_bi_profile")


def sweep_layers(p: Plan) -> None:
    """A share of the single-layer sweep (SWEEP_LAYERS) and nothing else: a second process scores these
    layers into the same sweep directory (the real-model twin's two sides); the run that covers the last
    layer marks the sweep complete."""
    _sweep_stage(p)


def upper_bound(p: Plan) -> None:
    """The GSM8K upper bound (appendix A.6.2, Figure 11): a model pruned by the search on GSM8K, fine-tuned on
    SAMPLES of the unpruned model's answers per prompt with each recipe."""
    s = p.settings
    method, amount = p.grid_value("upper_bound.method"), p.grid_value("upper_bound.amount")
    dataset = p.grid_value("upper_bound.dataset")
    samples = s.get("SAMPLES", p.grid_value("upper_bound.samples"))
    recipes = s.get("RECIPES", p.grid_value("upper_bound.recipes")).replace(",", " ").split()
    search_tasks = s.get("UPPER_BOUND_SEARCH_TASKS", ",".join(p.experiments.get("upper_bound.search_tasks")))
    if s.get("GSM8K_TRAIN"):
        p.settings = Settings({**s.env, p.dataset_var(dataset): s.get("GSM8K_TRAIN")})
    p.require_datasets(dataset)
    p.tasks = s.get("UPPER_BOUND_TASKS", ",".join(p.experiments.get("upper_bound.tasks")))
    p.classify = "0"
    pruned = p.layout.upper_bound_pruned
    p.eval(p.layout.base_run, p.model)
    p.prune(method, amount, f"{pruned}/model", cal_tasks=search_tasks)
    p.eval(pruned, f"{pruned}/model")
    data = p.self_generate(dataset, samples)
    for recipe in recipes:
        run = p.layout.upper_bound_run(samples, recipe)
        p.fine_tune(recipe, f"{pruned}/model", data, f"{run}/train", dataset)
        p.eval_trained(run, f"{pruned}/model", recipe)
    p.build("table_upper_bound,figure_11")


def base_scores(p: Plan) -> None:
    """The unpruned model's scores (the studies make them first, for every script)."""
    p.eval(p.layout.base_run, p.model)


def base_greedy(p: Plan) -> None:
    """The unpruned model's greedy mastery of the tasks (the toy study: the study samples at 0.9)."""
    target = p.layout.greedy
    if p.pending(target, p.layout.done(target)):
        command = [
            "python", "-m", "eval.generative", "--model", p.model, "--model_config", p.model_config,
            "--tasks", p.tasks, *p.settings.flag("--max_items", "ITEMS"), "--max_new_tokens", p.max_new_tokens,
            "--temperature", "0", *p.gen_batch_flags, "--output_dir", target,
        ]  # fmt: skip
        p.add(Stage(command, [target], [p.model]))


def base_responses(p: Plan) -> None:
    """The unpruned model's responses to the prompts of SGR_DATASET (SGR data)."""
    dataset = p.settings.get("SGR_DATASET")
    if dataset is None:
        raise PlanError("SGR_DATASET: the dataset whose prompts the unpruned model answers")
    p.self_generate(dataset)


def base_probe(p: Plan) -> None:
    """The arithmetic probe of the unpruned model with every layer ablated in turn."""
    p.probe("base", p.model, None, "all")


def artifacts(p: Plan) -> None:
    """Every table and figure of the grid, from the results (the studies' one build at the end)."""
    p.build(None)


PLANS: dict[str, Callable[[Plan], None]] = {
    "table1_pruning": grid_plan("table_1"),
    "table2_recovery": grid_plan("table_2"),
    "table4_lora": grid_plan("table_4"),
    "table6_ratios": grid_plan("table_6", "table_6,figure_6"),
    "figure5_perplexity": grid_plan("figure_5", base=False),
    "figure7_arithmetic": figure7_arithmetic,
    "figure8_code": grid_plan("figure_8"),
    "figure12_full_ft": figure12_full_ft,
    "figure14_sgr_vs_sft": grid_plan("figure_14"),
    "figures1-4_sweep": sweep,
    "sweep_layers": sweep_layers,
    "upper_bound": upper_bound,
    "base_scores": base_scores,
    "base_greedy": base_greedy,
    "base_responses": base_responses,
    "base_probe": base_probe,
    "artifacts": artifacts,
}


def plan_stages(name: str, model_config: str, env: Mapping[str, str] | None = None) -> Plan:
    """The plan ``name`` (a script's stem or a shared stage) for a model config, under ``env``."""
    if name not in PLANS:
        raise PlanError(f"no plan {name!r} (known: {', '.join(PLANS)})")
    plan = Plan(model_config, env)
    PLANS[name](plan)
    return plan


def run(plan: Plan) -> int:
    """Run each stage in order; the first failure stops the plan with its exit status."""
    Path(REPO_ROOT / plan.results).mkdir(parents=True, exist_ok=True)
    stages = iter(plan.stages)
    for line in plan.lines:
        if line.startswith("[skip] "):
            print(line, flush=True)
            continue
        stage = next(stages)
        started = time.monotonic()
        status = subprocess.run(stage.command, cwd=REPO_ROOT).returncode
        if status != 0:
            print(f"error: stage failed (exit {status}): {stage.line()}", file=sys.stderr)
            return status
        # A line per stage for batch logs: what ran, into which output, in how long.
        print(f"[plan] {stage.module} -> {stage.outputs[0]}: {time.monotonic() - started:.0f} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--list"]:
        for name, function in PLANS.items():
            print(f"{name}: {(function.__doc__ or '').strip().splitlines()[0] if function.__doc__ else name}")
        return 0
    if len(argv) not in (1, 2) or argv[0].startswith("-"):
        print(
            "usage: python -m orchestration.plan <plan> <model config>  (PLAN=1: print only; --list)",
            file=sys.stderr,
        )
        return 2
    name, model_config = argv[0], (argv[1] if len(argv) == 2 else os.environ.get("MODEL_CONFIG", ""))
    planning = os.environ.get("PLAN", "0") == "1"
    try:
        plan = plan_stages(name, model_config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"[study] {plan.model_config} ({plan.model}, {plan.num_layers} layers) -> {plan.results}"
        f"{' (plan only)' if planning else ''}",
        file=sys.stderr,
    )
    if planning:
        print("\n".join(plan.lines))
        return 0
    return run(plan)


if __name__ == "__main__":
    sys.exit(main())
