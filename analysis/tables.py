"""The paper's tables from result files: retention = pruned (or recovered) score / unpruned score.

- Tables 1 and 3: 25% pruning without recovery, one row per method (Table 3: the other models).
- Tables 2 and 5: 25% pruning with recovery, per method x dataset x {dataset responses, SGR}, beside the
  same pruning without recovery.
- Table 6: every pruning amount (2 layers, 10%, 15%, 25%) per method, without recovery.

Each writes Markdown, CSV and LaTeX (``<stem>.md``, ``.csv``, ``.tex``).
"""

from __future__ import annotations

from pathlib import Path

from analysis.layout import ResultsLayout, RunName
from eval.retention import load_scores, render, retention_rows
from infra.files import atomic_write_text
from infra.task_registry import registry

METHOD_ORDER = ("reverse", "bi", "bi_shortgpt", "angular", "iterative", "layers")


class MissingInputs(Exception):
    """An artifact's inputs are not on disk (yet); the message says which."""


def _sort_key(run: RunName) -> tuple:
    method = METHOD_ORDER.index(run.method) if run.method in METHOD_ORDER else len(METHOD_ORDER)
    return (method, not run.is_percent, run.amount_value, run.data or "", run.recovery or "")


def _write(columns: list[str], rows: list[dict], output: Path) -> list[Path]:
    written = []
    for suffix, text in render(columns, rows).items():
        written.append(atomic_write_text(output.with_suffix(suffix), text))
    return written


def _baseline(layout: ResultsLayout) -> dict[str, float]:
    if not layout.base_eval.is_dir():
        raise MissingInputs(f"{layout.base_eval} (the unpruned model's scores)")
    return load_scores(layout.base_eval)


def _runs(layout: ResultsLayout, kind: str, keep) -> dict[str, dict[str, float]]:
    runs = {run: path for run, path in layout.runs(kind).items() if keep(run)}
    return {
        run.label: load_scores(path / "eval")
        for run, path in sorted(runs.items(), key=lambda kv: _sort_key(kv[0]))
    }


def table_pruning(results: str | Path, output: str | Path, amount: str = "25pct") -> list[Path]:
    """Tables 1 and 3: retention after pruning by each method, no recovery."""
    layout = ResultsLayout(results)
    baseline = _baseline(layout)
    runs = _runs(layout, "pruned", lambda run: run.amount == amount)
    if not runs:
        raise MissingInputs(f"{layout.root / 'pruned'}/<method>-{amount}/eval")
    columns, rows = retention_rows(baseline, runs)
    return _write(columns, rows, Path(output))


def table_recovery(results: str | Path, output: str | Path, amount: str = "25pct") -> list[Path]:
    """Tables 2 and 5: retention after recovery fine-tuning, with the unrecovered rows for reference."""
    layout = ResultsLayout(results)
    baseline = _baseline(layout)
    recovered = _runs(layout, "recovered", lambda run: run.amount == amount)
    if not recovered:
        raise MissingInputs(f"{layout.root / 'recovered'}/<method>-{amount}-<sft|sgr>-<data>/eval")
    pruned = _runs(layout, "pruned", lambda run: run.amount == amount)
    columns, rows = retention_rows(baseline, {**pruned, **recovered})
    return _write(columns, rows, Path(output))


def table_ratios(results: str | Path, output: str | Path) -> list[Path]:
    """Table 6: retention at every pruning amount, per method."""
    layout = ResultsLayout(results)
    baseline = _baseline(layout)
    runs = _runs(layout, "pruned", lambda run: True)
    amounts = {run.amount for run in layout.runs("pruned")}
    if len(amounts) < 2:
        raise MissingInputs(f"{layout.root / 'pruned'}: runs at two or more pruning amounts")
    columns, rows = retention_rows(baseline, runs)
    return _write(columns, rows, Path(output))


def table_upper_bound(results: str | Path, output: str | Path) -> list[Path]:
    """Appendix A.6.2 (GSM8K upper bound): the math task's accuracy retention of each upper-bound run
    (GSM8K; the toy arithmetic task in the toy study)."""
    layout = ResultsLayout(results)
    baseline = _baseline(layout)
    runs = {
        name: load_scores(path / "eval")
        for name, path in layout.subruns("upper_bound").items()
        if (path / "eval").is_dir()
    }
    if not runs:
        raise MissingInputs(f"{layout.root / 'upper_bound'}/<name>/eval")
    math = {k: v for k, v in baseline.items() if k in registry().of_kind("math")}
    columns, rows = retention_rows(math, runs)
    return _write(columns, rows, Path(output))
