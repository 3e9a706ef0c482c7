"""The experiment grid (``configs/experiments/*.yaml``): which runs feed which artifact, with which data.

An artifact's grid is one block or a list of blocks, each a cross product of ``methods`` x ``amounts`` x
``recoveries`` (x ``recipes``). A block may be limited to some models (``models``) or leave some out
(``except_models``), so one grid holds the paper's per-model rows (Tables 2/5 have no iterative rows for
Gemma; Figure 7 draws each model's own method). A block marked ``extra: <name>`` is opt-in: its runs are
planned and read only when a run names it (``EXTRAS=<name>``), so the paper's tables are made of exactly
the rows the paper shows.

A run is :class:`Run`, named ``<method>-<amount>[-<recovery>-<dataset>[-<recipe>]]`` (the recipe only when
it is not the grid's default): :attr:`Run.name` writes the name and :func:`parse_run_name` reads it, here and
nowhere else. The stage plan (:mod:`orchestration.plan`) and ``analysis.build_artifacts`` read the same grid,
resolved for one model (:meth:`Experiments.resolved`), so a paper default is written once.

    python -m infra.experiments check configs/experiments/paper.yaml
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infra.config import ConfigError, load_yaml
from infra.paths import REPO_ROOT

DEFAULT_EXPERIMENTS = REPO_ROOT / "configs" / "experiments" / "paper.yaml"
PRUNING_METHODS = (
    "reverse",
    "bi",
    "bi_shortgpt",
    "angular",
    "iterative",
    "layers",
)  # layer_pruner.prune --method
AMOUNT = re.compile(r"^\d+(pct|layers)$")
RECOVERY = re.compile(r"^(none|(sft|sgr)-[a-z0-9_]+)$")
BLOCK_KEYS = {"methods", "amounts", "recoveries", "recipes", "tasks", "models", "except_models", "extra"}


class UnknownArtifact(ConfigError):
    """An artifact the grid has no runs for (a reduced grid, e.g. configs/experiments/real.yaml)."""


METHOD_LABELS = {
    "reverse": "Reverse-order",
    "bi": "Block influence",
    "bi_shortgpt": "BI (ShortGPT)",
    "angular": "Angular",
    "iterative": "Iterative",
    "layers": "Fixed layers",
}
RECOVERY_LABELS = {"sft": "SFT", "sgr": "SGR"}  # SFT: the dataset's own responses
RECIPE_LABELS = {"qlora": "QLoRA", "lora": "LoRA", "full": "full FT"}


@dataclass(frozen=True)
class Run:
    """One run of a grid: a pruned model, recovered or not."""

    method: str
    amount: str
    recovery: str | None = None  # None: the pruned model itself; "sft": the dataset's responses; "sgr"
    data: str | None = None  # the fine-tuning dataset
    recipe: str | None = None  # None: the grid's default recipe

    @property
    def name(self) -> str:
        name = f"{self.method}-{self.amount}"
        if self.recovery is not None:
            name += f"-{self.recovery}-{self.data}"
            if self.recipe is not None:
                name += f"-{self.recipe}"
        return name

    @property
    def recovery_text(self) -> str:
        """``none`` or ``<sft|sgr>-<dataset>``, as the grid writes a recovery."""
        return "none" if self.recovery is None else f"{self.recovery}-{self.data}"

    @property
    def pruned(self) -> Run:
        """The run of the same pruned model without recovery."""
        return Run(self.method, self.amount)

    def with_recovery(self, recovery: str | None, recipe: str | None = None) -> Run:
        return replace(self, recovery=recovery, recipe=recipe if recovery else None)

    def recipe_or(self, default: str) -> str:
        return self.recipe or default

    @property
    def amount_value(self) -> float:
        """Percent for ``25pct``; for ``2layers`` the layer count (plotted on a separate axis label)."""
        return float(re.match(r"\d+", self.amount).group())

    @property
    def is_percent(self) -> bool:
        return self.amount.endswith("pct")

    @property
    def label(self) -> str:
        count = self.amount_value
        amount = f"{count:g}%" if self.is_percent else f"{count:g} layer{'' if count == 1 else 's'}"
        text = f"{METHOD_LABELS.get(self.method, self.method)} {amount}"
        if self.recovery:
            text += f" + {RECOVERY_LABELS[self.recovery]} ({self.data})"
        if self.recipe:
            text += f" [{RECIPE_LABELS.get(self.recipe, self.recipe)}]"
        return text


# The run name parsed back (tables, figures, findings); a test checks it inverts Run.name.
RUN_NAME = re.compile(
    r"^(?P<method>[a-z_]+)-(?P<amount>\d+(?:pct|layers))"
    r"(?:-(?P<recovery>sft|sgr)-(?P<data>[a-z0-9_]+)(?:-(?P<recipe>[a-z0-9_]+))?)?$"
)


def parse_run_name(name: str) -> Run | None:
    match = RUN_NAME.match(name)
    return None if match is None else Run(**match.groupdict())


def parse_recovery(text: str) -> tuple[str | None, str | None]:
    """``none`` -> (None, None); ``sgr-dolci`` -> ("sgr", "dolci")."""
    if text == "none":
        return None, None
    kind, dataset = text.split("-", 1)
    return kind, dataset


@dataclass(frozen=True)
class Block:
    """One cross product of a grid."""

    methods: tuple[str, ...]
    amounts: tuple[str, ...]
    recoveries: tuple[str, ...]
    recipes: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    except_models: tuple[str, ...] = ()
    extra: str | None = None

    def applies(self, model: str | None, extras: tuple[str, ...] | list[str] = ()) -> bool:
        if self.extra is not None and self.extra not in extras:
            return False
        if model is None:
            return True
        return (not self.models or model in self.models) and model not in self.except_models


@dataclass(frozen=True)
class Grid:
    """An artifact's runs: its blocks (already resolved for a model when :meth:`Experiments.resolved` made
    it)."""

    blocks: tuple[Block, ...]

    def runs(self, default_recipe: str) -> list[Run]:
        """Every run of the grid (pruned-only runs included), in grid order, each once."""
        runs: dict[str, Run] = {}
        for block in self.blocks:
            for method in block.methods:
                for amount in block.amounts:
                    for recovery in block.recoveries:
                        kind, dataset = parse_recovery(recovery)
                        for recipe in block.recipes or (default_recipe,):
                            run = Run(
                                method, amount, kind, dataset, None if recipe == default_recipe else recipe
                            )
                            runs.setdefault(run.name, run)
        return list(runs.values())

    def run_names(self, default_recipe: str) -> list[str]:
        return [run.name for run in self.runs(default_recipe)]

    def _union(self, key: str) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for block in self.blocks:
            seen.update(dict.fromkeys(getattr(block, key)))
        return tuple(seen)

    @property
    def methods(self) -> tuple[str, ...]:
        return self._union("methods")

    @property
    def amounts(self) -> tuple[str, ...]:
        return self._union("amounts")

    @property
    def recoveries(self) -> tuple[str, ...]:
        return self._union("recoveries")

    @property
    def recipes(self) -> tuple[str, ...]:
        return self._union("recipes")

    @property
    def tasks(self) -> tuple[str, ...]:
        return self._union("tasks")


@dataclass(frozen=True)
class DatasetSpec:
    source: str
    epochs: float
    limit: int | None = None
    hub_config: str | None = None
    # The optimizer step at which the original merged its adapters for this dataset, where that is not the
    # end of its epochs (Alpaca: checkpoint-5823, one epoch); STEPS=as_run stops there.
    steps_as_run: int | None = None


@dataclass(frozen=True)
class HeldOut:
    """Held-out evaluation during fine-tuning: once per epoch on at most ``max_examples`` of the held-out
    split, except the runs of ``curve_artifact`` (Figure 5), evaluated every ``curve_eval_steps`` steps from
    step 0 on the same examples."""

    max_examples: int | None = None
    curve_artifact: str | None = None
    curve_eval_steps: int = 250


@dataclass(frozen=True)
class UpperBound:
    method: str
    amount: str
    search_tasks: tuple[str, ...]
    dataset: str
    samples: int
    recipes: tuple[str, ...]
    tasks: tuple[str, ...]
    models: tuple[str, ...] = ()  # the models the appendix ran it for (all when empty)


@dataclass(frozen=True)
class Experiments:
    path: Path
    recipe: str
    max_length: int | None
    seed: int
    datasets: dict[str, DatasetSpec]
    artifacts: dict[str, Grid]
    upper_bound: UpperBound | None = None
    held_out: HeldOut | None = None  # None: each recipe's own held-out evaluation
    probe_items: dict[str, int] = field(default_factory=dict)  # artifact -> probe items of its runs
    model: str | None = None  # the model config the grid is resolved for (None: every model's blocks)

    def grid(self, artifact: str) -> Grid:
        if artifact not in self.artifacts:
            raise UnknownArtifact(
                f"{self.path}: no artifact {artifact!r} (known: {', '.join(self.artifacts)})"
            )
        return self.artifacts[artifact]

    def resolved(self, model: str | None, extras: list[str] | tuple[str, ...] = ()) -> Experiments:
        """Every grid with the blocks that apply to ``model`` (all models: None) and the named extras; an
        artifact left with no block is dropped."""
        artifacts = {}
        for name, grid in self.artifacts.items():
            blocks = tuple(b for b in grid.blocks if b.applies(model, tuple(extras)))
            if blocks:
                artifacts[name] = Grid(blocks)
        upper_bound = self.upper_bound
        if (
            upper_bound is not None
            and model is not None
            and upper_bound.models
            and model not in upper_bound.models
        ):
            upper_bound = None
        return replace(self, artifacts=artifacts, upper_bound=upper_bound, model=model)

    def narrowed(self, **overrides: list[str]) -> Experiments:
        """Every block with ``methods``, ``amounts``, ``recoveries`` or ``recipes`` replaced (a run's
        METHODS, AMOUNTS, RECOVERIES, RECIPES), so the artifacts look for the runs the plan made."""
        values = {k: tuple(v) for k, v in overrides.items() if v}
        artifacts = {
            name: Grid(tuple(replace(block, **values) for block in grid.blocks))
            for name, grid in self.artifacts.items()
        }
        return replace(self, artifacts=artifacts)

    def extras(self) -> list[str]:
        """The names of the opt-in blocks."""
        return sorted({b.extra for g in self.artifacts.values() for b in g.blocks if b.extra})


def _list(value: Any, where: str, pattern: re.Pattern | None = None, known=None) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of names")
    for item in value:
        if pattern is not None and not pattern.match(item):
            raise ConfigError(f"{where}: {item!r} does not match {pattern.pattern}")
        if known is not None and item not in known:
            raise ConfigError(f"{where}: unknown {item!r} (known: {', '.join(known)})")
    return tuple(value)


def _recipes() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (REPO_ROOT / "configs" / "train").glob("*.yaml")))


def _models() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (REPO_ROOT / "configs" / "models").glob("*.yaml")))


def _block(data: Any, where: str, datasets: dict[str, DatasetSpec]) -> Block:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}': expected a mapping")
    extra = set(data) - BLOCK_KEYS
    if extra:
        raise ConfigError(f"{where}.{sorted(extra)[0]}': unknown key")
    recoveries = _list(data.get("recoveries"), f"{where}.recoveries'", RECOVERY)
    for recovery in recoveries:
        dataset = parse_recovery(recovery)[1]
        if dataset is not None and dataset not in datasets:
            raise ConfigError(f"{where}.recoveries': dataset {dataset!r} is not under 'datasets'")
    optional = {
        key: _list(data[key], f"{where}.{key}'", known=known)
        for key, known in (
            ("recipes", _recipes()),
            ("tasks", None),
            ("models", _models()),
            ("except_models", _models()),
        )
        if key in data
    }
    if "extra" in data and not (
        isinstance(data["extra"], str) and re.fullmatch(r"[a-z0-9_]+", data["extra"])
    ):
        raise ConfigError(f"{where}.extra': expected a name (letters, digits, _)")
    return Block(
        methods=_list(data.get("methods"), f"{where}.methods'", known=PRUNING_METHODS),
        amounts=_list(data.get("amounts"), f"{where}.amounts'", AMOUNT),
        recoveries=recoveries,
        extra=data.get("extra"),
        **optional,
    )


def load_experiments(path: str | Path | None = None) -> Experiments:
    """Parse and validate an experiment grid; errors name the file and the key."""
    path = Path(path or os.environ.get("EXPERIMENTS") or DEFAULT_EXPERIMENTS)
    data = load_yaml(path)
    unknown = set(data) - {"fine_tuning", "datasets", "artifacts", "upper_bound", "probe_items"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    fine_tuning = data.get("fine_tuning") or {}
    unknown = set(fine_tuning) - {"recipe", "max_length", "seed", "held_out"}
    if unknown:
        raise ConfigError(f"{path}: key 'fine_tuning.{sorted(unknown)[0]}': unknown key")
    recipe = fine_tuning.get("recipe", "qlora")
    if recipe not in _recipes():
        raise ConfigError(f"{path}: key 'fine_tuning.recipe': no configs/train/{recipe}.yaml")
    datasets = {}
    for name, spec in (data.get("datasets") or {}).items():
        where = f"{path}: key 'datasets.{name}'"
        if not isinstance(spec, dict) or "source" not in spec or "epochs" not in spec:
            raise ConfigError(f"{where}: needs 'source' and 'epochs'")
        extra = set(spec) - {"source", "epochs", "limit", "hub_config", "steps_as_run"}
        if extra:
            raise ConfigError(f"{where}: unknown key {sorted(extra)[0]!r}")
        if not isinstance(spec["epochs"], (int, float)) or spec["epochs"] <= 0:
            raise ConfigError(f"{where}.epochs: expected a positive number, got {spec['epochs']!r}")
        steps = spec.get("steps_as_run")
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
            raise ConfigError(f"{where}.steps_as_run: expected a positive whole number, got {steps!r}")
        datasets[name] = DatasetSpec(
            str(spec["source"]), float(spec["epochs"]), spec.get("limit"), spec.get("hub_config"), steps
        )
    artifacts = {}
    for name, grid in (data.get("artifacts") or {}).items():
        where = f"{path}: key 'artifacts.{name}"
        blocks = grid if isinstance(grid, list) else [grid]
        if not blocks:
            raise ConfigError(f"{where}': expected a mapping or a list of them")
        artifacts[name] = Grid(
            tuple(
                _block(block, where if len(blocks) == 1 else f"{where}[{i}]", datasets)
                for i, block in enumerate(blocks)
            )
        )
    upper_bound = None
    if data.get("upper_bound"):
        ub = data["upper_bound"]
        where = f"{path}: key 'upper_bound"
        if ub.get("method") not in PRUNING_METHODS:
            raise ConfigError(f"{where}.method': expected one of {', '.join(PRUNING_METHODS)}")
        if not AMOUNT.match(str(ub.get("amount", ""))):
            raise ConfigError(f"{where}.amount': expected <percent>pct or <count>layers")
        if ub.get("dataset") not in datasets:
            raise ConfigError(f"{where}.dataset': expected a name under 'datasets'")
        if not isinstance(ub.get("samples"), int) or ub["samples"] < 1:
            raise ConfigError(f"{where}.samples': expected a positive whole number")
        upper_bound = UpperBound(
            method=ub["method"],
            amount=str(ub["amount"]),
            search_tasks=_list(ub.get("search_tasks"), f"{where}.search_tasks'"),
            dataset=ub["dataset"],
            samples=ub["samples"],
            recipes=_list(ub.get("recipes"), f"{where}.recipes'", known=_recipes()),
            tasks=_list(ub.get("tasks"), f"{where}.tasks'"),
            models=_list(ub["models"], f"{where}.models'", known=_models()) if "models" in ub else (),
        )
    held_out = None
    if fine_tuning.get("held_out") is not None:
        spec = fine_tuning["held_out"]
        where = f"{path}: key 'fine_tuning.held_out"
        if not isinstance(spec, dict) or set(spec) - {"max_examples", "curve"}:
            raise ConfigError(f"{where}': expected max_examples and curve: {{artifact, eval_steps}}")
        curve = spec.get("curve") or {}
        if set(curve) - {"artifact", "eval_steps"}:
            raise ConfigError(f"{where}.curve': expected artifact and eval_steps")
        held_out = HeldOut(spec.get("max_examples"), curve.get("artifact"), int(curve.get("eval_steps", 250)))
    return Experiments(
        path=path,
        recipe=recipe,
        max_length=fine_tuning.get("max_length"),
        seed=int(fine_tuning.get("seed", 42)),
        datasets=datasets,
        artifacts=artifacts,
        upper_bound=upper_bound,
        held_out=held_out,
        probe_items=_probe_items(data.get("probe_items"), path),
    )


def _probe_items(value: Any, path: Path) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, int) and v > 0 for v in value.values()):
        raise ConfigError(f"{path}: key 'probe_items': expected <artifact>: <positive number of items>")
    return dict(value)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["check"] or len(argv) > 2:
        print("usage: python -m infra.experiments check [grid yaml]", file=sys.stderr)
        return 2
    try:
        experiments = load_experiments(argv[1] if len(argv) == 2 else None)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"[experiments] {experiments.path}: {len(experiments.artifacts)} artifacts valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
