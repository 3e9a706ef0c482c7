"""Build every paper table and figure whose inputs exist; say which are missing and why.

    python -m analysis.build_artifacts --results outputs/llama-3.1-8b-instruct --output_dir artifacts/llama
    python -m analysis.build_artifacts --results outputs/toy/toy-llama --output_dir outputs/toy/toy-llama/artifacts \
        --experiments configs/experiments/toy.yaml --only figure_1,table_1
    python -m analysis.build_artifacts --cross_model outputs/llama-3.1-8b-instruct,outputs/qwen2.5-7b-instruct \
        --output_dir artifacts/all --only figure_7      # Figure 7 averaged over the models' results trees

Which runs feed which artifact comes from the experiment grid (--experiments, default
configs/experiments/paper.yaml), the same file the scripts read.

The results tree is described in ``infra/layout.py``. Writes the artifacts (PNG + PDF figures; Markdown,
CSV and LaTeX tables) and ``artifacts.json`` (built files and missing inputs) into --output_dir. Exits
non-zero only on a real error, not on missing inputs; ``--strict`` makes a missing input an error too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from analysis import figures, tables
from analysis.findings import write_findings
from analysis.paper_values import write_reproduction
from analysis.tables import MissingInputs
from infra.config import ConfigError, parse_cli, report_error
from infra.experiments import DEFAULT_EXPERIMENTS, UnknownArtifact, load_experiments
from infra.files import OutputBusyError, atomic_write_json, output_lock

ARTIFACTS: dict[str, tuple[str, Callable]] = {  # name -> (title, function(results, output, experiments))
    "table_1": ("Tables 1/3: retention after 25% pruning and Alpaca SFT", tables.table_pruning),
    "table_2": ("Tables 2/5: retention after 25% pruning and recovery", tables.table_recovery),
    "table_4": ("Table 4: QLoRA versus LoRA recovery", tables.table_recipes),
    "table_6": ("Table 6: retention at each pruning amount after SGR", tables.table_ratios),
    "table_upper_bound": ("Appendix A.6.2: GSM8K upper bound", tables.table_upper_bound),
    "figure_1": ("Figure 1: single-layer removal, per task", lambda r, o, e: figures.figure_sweep(r, o)),
    "figure_2": (
        "Figure 2: degeneration with one layer removed",
        lambda r, o, e: figures.figure_degeneration(r, o),
    ),
    "figure_3": ("Figure 3: arithmetic probe, per ablated layer", lambda r, o, e: figures.figure_probe(r, o)),
    "figure_4": (
        "Figure 4: code outcomes with one layer removed",
        lambda r, o, e: figures.figure_code_errors_sweep(r, o),
    ),
    "figure_5": ("Figure 5: training and held-out perplexity during recovery", figures.figure_perplexity),
    "figure_6": ("Figure 6: retention against pruning amount after SGR", figures.figure_ratios),
    "figure_7": ("Figure 7: arithmetic after recovery", figures.figure_probe_recovery),
    "figure_8": ("Figure 8: code outcomes after recovery", figures.figure_code_errors_models),
    "figure_11": ("Figure 11: GSM8K upper bound", figures.figure_upper_bound),
    "figure_12": ("Figure 12: QLoRA versus full fine-tuning", figures.figure_full_ft),
    "figure_14": (
        "Figure 14: SGR versus dataset responses at each pruning amount",
        lambda r, o, e: figures.figure_ratios(r, o, e, artifact="figure_14"),
    ),
    "figure_bi_profile": ("Block-influence profile", lambda r, o, e: figures.figure_bi_profile(r, o)),
    "findings": ("The paper's findings with bootstrap intervals", write_findings),
    "reproduction": ("The paper's reported numbers against ours, cell by cell", write_reproduction),
    "released": ("Released pruned models against their parents", tables.table_released),
}


CROSS_MODEL = ("figure_7",)  # artifacts drawn over several models' results trees


@dataclass
class BuildArgs:
    output_dir: str
    results: str | None = field(default=None, metadata={"help": "one model's results tree (infra/layout.py)"})
    cross_model: list[str] = field(
        default_factory=list, metadata={"help": "several models' results trees (Figure 7: their mean)"}
    )
    experiments: str = field(
        default=str(DEFAULT_EXPERIMENTS), metadata={"help": "the experiment grid (configs/experiments)"}
    )
    model_config: str | None = field(
        default=None, metadata={"help": "the grid's rows for this model (default: the results tree's name)"}
    )
    extras: list[str] = field(default_factory=list, metadata={"help": "opt-in blocks of the grid to read"})
    only: list[str] = field(default_factory=list, metadata={"help": "artifact names; default: all"})
    strict: bool = False
    # The scripts' METHODS, AMOUNTS, RECOVERIES, RECIPES: the grid narrowed as the runs were.
    methods: list[str] = field(default_factory=list, metadata={"help": "replace every grid's methods"})
    amounts: list[str] = field(default_factory=list, metadata={"help": "replace every grid's amounts"})
    recoveries: list[str] = field(default_factory=list, metadata={"help": "replace every grid's recoveries"})
    recipes: list[str] = field(default_factory=list, metadata={"help": "replace every grid's recipes"})

    def __post_init__(self) -> None:
        if (self.results is None) == (not self.cross_model):
            raise ConfigError("give --results (one model) or --cross_model (several), not both")
        if self.cross_model and set(self.only or ["all"]) - set(CROSS_MODEL):
            raise ConfigError(f"key 'only': --cross_model builds {', '.join(CROSS_MODEL)} only")
        unknown = [name for name in self.only if name not in ARTIFACTS]
        if unknown:
            raise ConfigError(f"key 'only': unknown artifact {unknown[0]!r} (known: {', '.join(ARTIFACTS)})")


def build(
    results: str | Path | list[str | Path],
    output_dir: str | Path,
    only: list[str] | None = None,
    experiments: str | Path | None = None,
    narrow: dict[str, list[str]] | None = None,
    model_config: str | None = None,
    extras: list[str] | None = None,
) -> dict:
    """Build what can be built; returns ``{"built": {name: [files]}, "missing": {name: reason}}``.
    ``results`` is one results tree, or a list of them for the cross-model artifacts."""
    trees = [results] if isinstance(results, (str, Path)) else list(results)
    for tree in trees:
        if not Path(tree).is_dir():
            raise FileNotFoundError(f"{tree}: no such results directory")
    model = model_config or (Path(trees[0]).name if len(trees) == 1 else None)
    grid = load_experiments(experiments).resolved(model, extras or []).narrowed(**(narrow or {}))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "results": [str(t) for t in trees] if len(trees) > 1 else str(trees[0]),
        "built": {},
        "missing": {},
        "experiments": str(grid.path),
    }
    for name in only or (list(CROSS_MODEL) if not isinstance(results, (str, Path)) else list(ARTIFACTS)):
        _, function = ARTIFACTS[name]
        try:
            paths = function(results, output_dir / name, grid)
        except MissingInputs as missing:
            report["missing"][name] = f"missing input: {missing}"
            continue
        except UnknownArtifact:
            report["missing"][name] = f"not in the grid {grid.path}"
            continue
        report["built"][name] = [str(p) for p in paths]
    atomic_write_json(output_dir / "artifacts.json", report)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(BuildArgs, argv, doc=__doc__)
    try:
        narrow = {
            "methods": args.methods,
            "amounts": args.amounts,
            "recoveries": args.recoveries,
            "recipes": args.recipes,
        }
        output_dir = Path(args.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        with output_lock(output_dir / ".lock", output_dir):
            report = build(
                args.results or args.cross_model,
                args.output_dir,
                args.only,
                args.experiments,
                narrow,
                args.model_config,
                args.extras,
            )
    except (ConfigError, OSError, OutputBusyError) as error:
        return report_error(error)
    for name, paths in report["built"].items():
        print(f"[artifacts] built {name} ({ARTIFACTS[name][0]}): {', '.join(Path(p).name for p in paths)}")
    for name, reason in report["missing"].items():
        print(f"[artifacts] skipped {name} ({ARTIFACTS[name][0]}): {reason}")
    print(f"[artifacts] {len(report['built'])} built, {len(report['missing'])} skipped -> {args.output_dir}")
    return 1 if args.strict and report["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
