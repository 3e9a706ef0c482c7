"""The paper's tables from result files: retention = pruned (or recovered) score / unpruned score.

Each table's rows are the runs of its grid in the experiment file (``configs/experiments/*.yaml``):
- Tables 1 and 3: 25% pruning per method after Alpaca-cleaned SFT (Table 3: the other models), with the
  unrecovered models as extra rows.
- Tables 2 and 5: 25% pruning with recovery, per method x dataset x {dataset responses, SGR}, beside the
  same pruning without recovery.
- Table 4: QLoRA against LoRA recovery.
- Table 6: every pruning amount (2 layers, 10%, 15%, 25%) per method, after SGR.

Each writes Markdown, CSV and LaTeX (``<stem>.md``, ``.csv``, ``.tex``).
"""

from __future__ import annotations

from pathlib import Path

from eval.retention import caption, load_scores, render, retention_rows
from infra.experiments import RECIPE_LABELS, Experiments, parse_recovery
from infra.files import atomic_write_text
from infra.layout import ResultsLayout
from infra.task_registry import registry


class MissingInputs(Exception):
    """An artifact's inputs are not on disk (yet); the message says which."""


def _write(columns: list[str], rows: list[dict], output: Path, caption_text: str | None = None) -> list[Path]:
    written = []
    for suffix, text in render(columns, rows, caption_text).items():
        written.append(atomic_write_text(output.with_suffix(suffix), text))
    return written


def _baseline(layout: ResultsLayout) -> dict[str, float]:
    if not layout.base_eval.is_dir():
        raise MissingInputs(f"{layout.base_eval} (the unpruned model's scores)")
    return load_scores(layout.base_eval)


def grid_scores(
    layout: ResultsLayout, experiments: Experiments, artifact: str
) -> dict[str, dict[str, float]]:
    """Scores of an artifact's grid runs that exist, labelled, in grid order. Runs without recovery are
    marked as such where the grid also has recovered runs; recipes are named where the grid compares them."""
    grid = experiments.grid(artifact)
    recovered = any(parse_recovery(r)[0] for r in grid.recoveries)
    default = RECIPE_LABELS.get(experiments.recipe, experiments.recipe)
    rows, directories = {}, {}
    for run, directory in layout.grid_runs(grid.run_names(experiments.recipe)).items():
        label = run.label
        if run.recovery is None and recovered:
            label += " (no recovery)"
        elif run.recovery and len(grid.recipes) > 1 and run.recipe is None:
            label += f" [{default}]"
        rows[label] = load_scores(directory / "eval")
        directories[label] = directory / "eval"
    return rows, directories


def _grid_table(
    results: str | Path, output: str | Path, experiments: Experiments, artifact: str
) -> list[Path]:
    layout = ResultsLayout(results)
    baseline = _baseline(layout)
    runs, directories = grid_scores(layout, experiments, artifact)
    if not runs:
        names = experiments.grid(artifact).run_names(experiments.recipe)
        raise MissingInputs(
            f"{layout.root}: none of the runs of {artifact} ({', '.join(names)}) has an eval/"
        )
    columns, rows = retention_rows(baseline, runs, layout.base_eval, directories)
    return _write(columns, rows, Path(output), caption(layout.base_eval, directories.values()))


def table_pruning(results: str | Path, output: str | Path, experiments: Experiments) -> list[Path]:
    """Tables 1 and 3: retention after 25% pruning and Alpaca-cleaned SFT (grid ``table_1``)."""
    return _grid_table(results, output, experiments, "table_1")


def table_recovery(results: str | Path, output: str | Path, experiments: Experiments) -> list[Path]:
    """Tables 2 and 5: retention after recovery fine-tuning, beside the unrecovered models (``table_2``)."""
    return _grid_table(results, output, experiments, "table_2")


def table_recipes(results: str | Path, output: str | Path, experiments: Experiments) -> list[Path]:
    """Table 4: QLoRA against LoRA recovery (grid ``table_4``)."""
    return _grid_table(results, output, experiments, "table_4")


def table_ratios(results: str | Path, output: str | Path, experiments: Experiments) -> list[Path]:
    """Table 6: retention at every pruning amount, per method, after SGR (grid ``table_6``)."""
    grid = experiments.grid("table_6")
    layout = ResultsLayout(results)
    amounts = {run.amount for run in layout.grid_runs(grid.run_names(experiments.recipe))}
    if len(amounts) < 2:
        raise MissingInputs(f"{layout.root}: runs of table_6 at two or more pruning amounts")
    return _grid_table(results, output, experiments, "table_6")


def table_upper_bound(results: str | Path, output: str | Path, experiments: Experiments) -> list[Path]:
    """Appendix A.6.2 (GSM8K upper bound): the math task's accuracy retention of each upper-bound run
    (GSM8K; the toy arithmetic task in the toy study)."""
    layout = ResultsLayout(results)
    baseline = _baseline(layout)
    directories = {
        name: path / "eval"
        for name, path in layout.subruns("upper_bound").items()
        if (path / "eval").is_dir()
    }
    if not directories:
        raise MissingInputs(f"{layout.root / 'upper_bound'}/<name>/eval")
    runs = {name: load_scores(directory) for name, directory in directories.items()}
    math = {k: v for k, v in baseline.items() if k in registry().of_kind("math")}
    columns, rows = retention_rows(math, runs, layout.base_eval, directories)
    return _write(columns, rows, Path(output), caption(layout.base_eval, directories.values()))


def table_released(results: str | Path, output: str | Path, experiments: Experiments) -> list[Path]:
    """Released pruned models against their parents (``released/<pair>``): per task the retention with its
    interval, the arithmetic probe's accuracy of both, and the pruned model's rep-4 change (points)."""
    from infra.files import read_json

    layout = ResultsLayout(results)
    written = []
    for pair, directory in layout.subruns("released").items():
        parent, pruned = directory / "parent" / "eval", directory / "pruned" / "eval"
        if not (parent.is_dir() and pruned.is_dir()):
            continue
        columns, rows = retention_rows(
            load_scores(parent), {"pruned": load_scores(pruned)}, parent, {"pruned": pruned}
        )
        written += _write(
            columns,
            rows,
            Path(output).with_name(f"released_{pair}"),
            f"{pair}: retention of the pruned model against its parent",
        )
        lines = [f"# {pair}: the released pruned model against its parent", ""]
        for which in ("parent", "pruned"):
            probe = directory / which / "probe" / "arithmetic_probe.json"
            if probe.is_file():
                lines.append(
                    f"- arithmetic probe, {which}: {100 * read_json(probe)['baseline']['accuracy']:.1f}% top-1"
                )
        for path in sorted((directory / "pruned" / "degeneration").glob("*.json")):
            change = next(iter(read_json(path)["files"].values())).get("change", {})
            if change.get("rep_4") is not None:
                lines.append(f"- {path.stem}: rep-4 {change['rep_4']:+.1f} points against the parent")
        written.append(
            atomic_write_text(Path(output).with_name(f"released_{pair}_measures.md"), "\n".join(lines) + "\n")
        )
    if not written:
        raise MissingInputs(
            f"{layout.root}/released/<pair>/{{parent,pruned}}/eval (scripts/released_pair.sh)"
        )
    return written
