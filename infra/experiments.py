"""The experiment grid (``configs/experiments/*.yaml``): which runs feed which artifact, with which data.

    python -m infra.experiments get artifacts.table_1.methods            # -> reverse bi iterative
    python -m infra.experiments get datasets.dolci.epochs --experiments configs/experiments/toy.yaml
    python -m infra.experiments get datasets.gsm8k.limit --optional   # empty when the key is absent
    python -m infra.experiments check configs/experiments/paper.yaml
    python -m infra.experiments points table_4 --recipes lora   # name method amount recovery recipe, per run

The shell scripts read their runs from here (``points``: the grid as narrowed by METHODS, AMOUNTS,
RECOVERIES, RECIPES, with the run names), and ``analysis.build_artifacts`` selects each table's rows
from the same grid, so a paper default is written once. A run is named
``<method>-<amount>[-<recovery>-<dataset>[-<recipe>]]`` (the recipe only when it is not the default one):
``run_name`` writes it and ``parse_run_name`` reads it, here and nowhere else.
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


class UnknownArtifact(ConfigError):
    """An artifact the grid has no runs for (a reduced grid, e.g. configs/experiments/real.yaml)."""


@dataclass(frozen=True)
class Recovery:
    kind: str | None  # None: the pruned model itself; "sft": the dataset's responses; "sgr": self-generated
    dataset: str | None = None

    @classmethod
    def parse(cls, text: str) -> Recovery:
        if text == "none":
            return cls(None)
        kind, dataset = text.split("-", 1)
        return cls(kind, dataset)


@dataclass(frozen=True)
class Grid:
    methods: tuple[str, ...]
    amounts: tuple[str, ...]
    recoveries: tuple[Recovery, ...]
    recipes: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()

    def points(self, default_recipe: str) -> dict[str, tuple[str, str, Recovery, str]]:
        """Every run of the grid (pruned-only runs included), in grid order: name -> (method, amount,
        recovery, recipe)."""
        points = {}
        for method in self.methods:
            for amount in self.amounts:
                for recovery in self.recoveries:
                    for recipe in self.recipes or (default_recipe,):
                        name = run_name(method, amount, recovery, recipe, default_recipe)
                        points.setdefault(name, (method, amount, recovery, recipe))
        return points

    def run_names(self, default_recipe: str) -> list[str]:
        return list(self.points(default_recipe))


def run_name(method: str, amount: str, recovery: Recovery, recipe: str, default_recipe: str) -> str:
    name = f"{method}-{amount}"
    if recovery.kind is not None:
        name += f"-{recovery.kind}-{recovery.dataset}"
        if recipe != default_recipe:
            name += f"-{recipe}"
    return name


# The run name parsed back (tables, figures, findings); a test checks it inverts run_name.
RUN_NAME = re.compile(
    r"^(?P<method>[a-z_]+)-(?P<amount>\d+(?:pct|layers))"
    r"(?:-(?P<recovery>sft|sgr)-(?P<data>[a-z0-9_]+)(?:-(?P<recipe>[a-z0-9_]+))?)?$"
)
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
class RunName:
    name: str
    method: str
    amount: str
    recovery: str | None = None
    data: str | None = None
    recipe: str | None = None  # None: the grid's default recipe

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


def parse_run_name(name: str) -> RunName | None:
    match = RUN_NAME.match(name)
    if match is None:
        return None
    return RunName(name=name, **match.groupdict())


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
class Experiments:
    path: Path
    recipe: str
    max_length: int | None
    seed: int
    datasets: dict[str, DatasetSpec]
    artifacts: dict[str, Grid]
    upper_bound: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def grid(self, artifact: str) -> Grid:
        if artifact not in self.artifacts:
            raise UnknownArtifact(
                f"{self.path}: no artifact {artifact!r} (known: {', '.join(self.artifacts)})"
            )
        return self.artifacts[artifact]

    def narrowed(self, **overrides: list[str]) -> Experiments:
        """Every grid with ``methods``, ``amounts``, ``recoveries`` or ``recipes`` replaced (the scripts'
        METHODS, AMOUNTS, RECOVERIES, RECIPES), so the artifacts look for the runs the scripts made."""
        values = {k: tuple(v) for k, v in overrides.items() if v}
        if "recoveries" in values:
            values["recoveries"] = tuple(Recovery.parse(r) for r in values["recoveries"])
        artifacts = {name: replace(grid, **values) for name, grid in self.artifacts.items()}
        return replace(self, artifacts=artifacts)

    def get(self, dotted: str, optional: bool = False) -> Any:
        value: Any = self.raw
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                if optional:
                    return None
                raise ConfigError(f"{self.path}: no key {dotted!r}")
            value = value[part]
        return value


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


def load_experiments(path: str | Path | None = None) -> Experiments:
    """Parse and validate an experiment grid; errors name the file and the key."""
    path = Path(path or os.environ.get("EXPERIMENTS") or DEFAULT_EXPERIMENTS)
    data = load_yaml(path)
    unknown = set(data) - {"fine_tuning", "datasets", "artifacts", "upper_bound"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    fine_tuning = data.get("fine_tuning") or {}
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
        if not isinstance(grid, dict):
            raise ConfigError(f"{where}': expected a mapping")
        extra = set(grid) - {"methods", "amounts", "recoveries", "recipes", "tasks"}
        if extra:
            raise ConfigError(f"{where}.{sorted(extra)[0]}': unknown key")
        recoveries = _list(grid.get("recoveries"), f"{where}.recoveries'", RECOVERY)
        for recovery in recoveries:
            dataset = Recovery.parse(recovery).dataset
            if dataset is not None and dataset not in datasets:
                raise ConfigError(f"{where}.recoveries': dataset {dataset!r} is not under 'datasets'")
        artifacts[name] = Grid(
            methods=_list(grid.get("methods"), f"{where}.methods'", known=PRUNING_METHODS),
            amounts=_list(grid.get("amounts"), f"{where}.amounts'", AMOUNT),
            recoveries=tuple(Recovery.parse(r) for r in recoveries),
            recipes=_list(grid["recipes"], f"{where}.recipes'", known=_recipes())
            if "recipes" in grid
            else (),
            tasks=_list(grid["tasks"], f"{where}.tasks'") if "tasks" in grid else (),
        )
    upper_bound = data.get("upper_bound") or {}
    if upper_bound:
        where = f"{path}: key 'upper_bound"
        if upper_bound.get("method") not in PRUNING_METHODS:
            raise ConfigError(f"{where}.method': expected one of {', '.join(PRUNING_METHODS)}")
        if not AMOUNT.match(str(upper_bound.get("amount", ""))):
            raise ConfigError(f"{where}.amount': expected <percent>pct or <count>layers")
        if upper_bound.get("dataset") not in datasets:
            raise ConfigError(f"{where}.dataset': expected a name under 'datasets'")
        _list(upper_bound.get("recipes"), f"{where}.recipes'", known=_recipes())
    return Experiments(
        path=path,
        recipe=recipe,
        max_length=fine_tuning.get("max_length"),
        seed=int(fine_tuning.get("seed", 42)),
        datasets=datasets,
        artifacts=artifacts,
        upper_bound=upper_bound,
        raw=data,
    )


def grid_points(
    experiments: Experiments,
    artifact: str,
    narrow: dict[str, list[str]] | None = None,
    only_methods: list[str] | None = None,
) -> list[tuple[str, str, str, str, str]]:
    """Every run of an artifact's grid, narrowed as the scripts' variables say (the same narrowing
    ``analysis.build_artifacts`` applies): ``(name, method, amount, recovery, recipe)`` in grid order.
    ``only_methods``: this process's share of the methods (the toy study's two sides)."""
    grid = experiments.narrowed(**(narrow or {})).grid(artifact)
    points = []
    for name, (method, amount, recovery, recipe) in grid.points(experiments.recipe).items():
        if only_methods and method not in only_methods:
            continue
        text = "none" if recovery.kind is None else f"{recovery.kind}-{recovery.dataset}"
        points.append((name, method, amount, text, recipe))
    return points


def _shell(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return " ".join(value)
    return "" if value is None else str(value)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = (
        "usage: python -m infra.experiments {get <dotted.key> [--optional]|check|points <artifact> "
        "[--methods A,B] [--amounts ..] [--recoveries ..] [--recipes ..] [--only_methods ..]} [--experiments FILE]"
    )
    optional = "--optional" in argv
    argv = [a for a in argv if a != "--optional"]
    values: dict[str, str] = {}
    for key in ("experiments", "methods", "amounts", "recoveries", "recipes", "only_methods"):
        if f"--{key}" in argv:
            position = argv.index(f"--{key}")
            if position + 1 >= len(argv):
                print(usage, file=sys.stderr)
                return 2
            values[key] = argv[position + 1]
            del argv[position : position + 2]
    path = values.pop("experiments", None)
    lists = {key: [v for v in value.replace(",", " ").split() if v] for key, value in values.items()}
    try:
        if argv[:1] == ["points"] and len(argv) == 2:
            only = lists.pop("only_methods", None)
            for point in grid_points(load_experiments(path), argv[1], lists, only):
                print(" ".join(point))
        elif argv[:1] == ["get"] and len(argv) == 2:
            print(_shell(load_experiments(path).get(argv[1], optional)))
        elif argv[:1] == ["check"] and len(argv) <= 2:
            experiments = load_experiments(argv[1] if len(argv) == 2 else path)
            print(f"[experiments] {experiments.path}: {len(experiments.artifacts)} artifacts valid")
        else:
            print(usage, file=sys.stderr)
            return 2
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
