"""The paper's reported numbers (``configs/paper_values.yaml``) and our tables compared with them, cell by cell.

    python -m analysis.build_artifacts --results outputs/llama-3.1-8b-instruct ...   # writes, among the rest,
        table_1_vs_paper.md, table_2_vs_paper.md and reproduction.md

Each cell reads: the paper's value, ours with its bootstrap 95% interval, the difference in points (ours minus
the paper's, times 100), and whether the paper's value lies in our interval ("reproduced"). Retention is the
paper's own definition: per task, the pruned (recovered) model's score over the unpruned model's; each Mean is
the mean of the table's task retentions. ``reproduction.md`` counts, per paper table, the cells reproduced, those
off by at most 3 points, and the rest, and lists the largest differences. Rows the paper quotes from Lu et al.
are compared and shown, never counted. A model the paper reports nothing for (the toy model, SmolLM2) is
said to have no paper values; nothing is filled in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import ConfigError, load_yaml
from infra.paths import REPO_ROOT

PAPER_VALUES = REPO_ROOT / "configs" / "paper_values.yaml"
WITHIN_POINTS = 3.0  # "within ±3 points"


@dataclass(frozen=True)
class PaperRow:
    table: str
    model: str
    row: str  # the label as printed
    run: str  # our run (infra.experiments.Run.name)
    cells: dict[str, float]  # column -> value; columns: the tasks, classification_mean, generative_mean
    quoted: bool = False
    arrows: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaperTable:
    name: str
    title: str
    artifact: str  # our artifact it is compared with
    rows: tuple[PaperRow, ...]


@functools.cache
def load_paper_values(path: Path = PAPER_VALUES) -> dict[str, Any]:
    """Tables (name -> :class:`PaperTable`), the column order and the text's statements; errors name the key."""
    data = load_yaml(path)
    columns = data.get("columns") or {}
    classification, generative = list(columns.get("classification", [])), list(columns.get("generative", []))
    if len(classification) != 7 or len(generative) != 4:
        raise ConfigError(f"{path}: key 'columns': expected 7 classification and 4 generative tasks")
    tables = {}
    for name, spec in (data.get("tables") or {}).items():
        rows = []
        for model, model_rows in (spec.get("models") or {}).items():
            for i, raw in enumerate(model_rows):
                where = f"{path}: key 'tables.{name}.models.{model}[{i}]'"
                if len(raw.get("classification", [])) != 7 or len(raw.get("generative", [])) != 4:
                    raise ConfigError(f"{where}: expected 7 classification and 4 generative cells")
                cells = {
                    **dict(zip(classification, raw["classification"])),
                    "classification_mean": raw["classification_mean"],
                    **dict(zip(generative, raw["generative"])),
                    "generative_mean": raw["generative_mean"],
                }
                rows.append(
                    PaperRow(
                        name,
                        model,
                        raw["row"],
                        raw["run"],
                        cells,
                        bool(raw.get("quoted")),
                        tuple(raw.get("arrows", ())),
                    )
                )
        tables[name] = PaperTable(name, spec["title"], spec["artifact"], tuple(rows))
    return {"tables": tables, "columns": classification + ["classification_mean"] + generative + ["generative_mean"],
            "text": data.get("text") or []}  # fmt: skip


def paper_rows(model: str, artifact: str) -> dict[str, list[PaperRow]]:
    """Per paper table compared with ``artifact``, its rows for ``model``."""
    found: dict[str, list[PaperRow]] = {}
    for table in load_paper_values()["tables"].values():
        rows = [row for row in table.rows if row.model == model and table.artifact == artifact]
        if rows:
            found[table.name] = rows
    return found


@dataclass(frozen=True)
class Cell:
    table: str
    row: str
    column: str
    paper: float
    ours: float | None
    interval: tuple[float, float] | None
    quoted: bool

    @property
    def difference(self) -> float | None:
        """Ours minus the paper's, in points (retention times 100)."""
        return None if self.ours is None else 100 * (self.ours - self.paper)

    @property
    def reproduced(self) -> bool | None:
        if self.interval is None:
            return None
        low, high = self.interval
        return low <= self.paper <= high

    @property
    def verdict(self) -> str:
        if self.ours is None:
            return "not run"
        if self.reproduced:
            return "reproduced"
        if abs(self.difference) <= WITHIN_POINTS:
            return "within 3 points"
        return "off"


def compare(rows: list[PaperRow], ours: dict[str, dict[str, Any]]) -> list[Cell]:
    """Every cell of ``rows`` against our retention rows (``ours``: run name -> row of
    :func:`eval.retention.retention_rows`)."""
    cells = []
    for row in rows:
        mine = ours.get(row.run)
        for column, paper in row.cells.items():
            value = mine.get(column) if mine else None
            interval = mine.get("ci", {}).get(column) if mine else None
            cells.append(Cell(row.table, row.row, column, paper, value, interval, row.quoted))
    return cells


def render_comparison(table: PaperTable, rows: list[PaperRow], cells: list[Cell]) -> str:
    """The table with each cell as: paper, ours [interval], difference in points, reproduced or not."""
    from eval.retention import LABELS

    columns = load_paper_values()["columns"]
    names = {"classification_mean": "Classif. mean", "generative_mean": "Gen. mean"}
    by = {(c.row, c.column): c for c in cells}
    lines = [
        f"{table.title} against ours: each cell is paper / ours [95% interval] / difference in points "
        "(ours − paper) / ✓ when the paper's value is in our interval.",
        "",
        "| row (paper) | run | " + " | ".join(names.get(c, LABELS.get(c, c)) for c in columns) + " |",
        "| --- | --- |" + " --- |" * len(columns),
    ]
    for row in rows:
        parts = []
        for column in columns:
            cell = by[(row.row, column)]
            if cell.ours is None:
                parts.append(f"{100 * cell.paper:.1f} / –")
                continue
            interval = (
                f" [{100 * cell.interval[0]:.1f}, {100 * cell.interval[1]:.1f}]" if cell.interval else ""
            )
            mark = " ✓" if cell.reproduced else ""
            parts.append(
                f"{100 * cell.paper:.1f} / {100 * cell.ours:.1f}{interval} / {cell.difference:+.1f}{mark}"
            )
        label = row.row + (" (quoted)" if row.quoted else "")
        lines.append(f"| {label} | {row.run} | " + " | ".join(parts) + " |")
    return "\n".join(lines) + "\n"


def summary(cells: list[Cell]) -> dict[str, int]:
    own = [c for c in cells if not c.quoted]
    counted = {"cells": len(own), "not run": 0, "reproduced": 0, "within 3 points": 0, "off": 0}
    for cell in own:
        counted[cell.verdict] += 1
    return counted


def write_reproduction(results: str | Path, output: str | Path, experiments: Any) -> list[Path]:
    """``<paper table>_vs_paper.md`` for every paper table of this model, and ``reproduction.md``."""
    from analysis.tables import MissingInputs
    from eval.retention import load_scores, retention_rows
    from infra.files import atomic_write_text
    from infra.layout import ResultsLayout

    layout = ResultsLayout(results)
    model = experiments.model or layout.root.name
    directory = Path(output).parent
    tables = load_paper_values()["tables"]
    compared = {
        name: rows
        for artifact in ("table_1", "table_2")
        for name, rows in paper_rows(model, artifact).items()
    }
    report = directory / "reproduction.md"
    if not compared:
        text = f"# The paper's numbers and ours: {model}\n\nThe paper reports no numbers for {model}: nothing to compare.\n"
        return [atomic_write_text(report, text)]
    if not layout.base_eval.is_dir():
        raise MissingInputs(f"{layout.base_eval} (the unpruned model's scores)")
    baseline = load_scores(layout.base_eval)
    written, lines, every = [], [f"# The paper's numbers and ours: {model}", ""], []
    lines += [
        "A cell is reproduced when the paper's value lies in our bootstrap 95% interval; within 3 points when it",
        "does not but ours differs by at most 3 points; else off. Rows the paper quotes from Lu et al. are shown",
        "in the tables but not counted.",
        "",
        "| paper table | compared with | cells | not run | reproduced | within 3 points | off |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rows in compared.items():
        dirs = {
            row.run: layout.run_dir(row.run) / "eval"
            for row in rows
            if (layout.run_dir(row.run) / "eval").is_dir()
        }
        ours: dict[str, dict[str, Any]] = {}
        if dirs:
            scores = {run: load_scores(path) for run, path in dirs.items()}
            ours = {row["run"]: row for row in retention_rows(baseline, scores, layout.base_eval, dirs)[1]}
        cells = compare(rows, ours)
        every += [c for c in cells if not c.quoted and c.ours is not None]
        written.append(
            atomic_write_text(directory / f"{name}_vs_paper.md", render_comparison(tables[name], rows, cells))
        )
        counts = summary(cells)
        lines.append(
            f"| {tables[name].title} | `{tables[name].artifact}` | {counts['cells']} | {counts['not run']} | "
            f"{counts['reproduced']} | {counts['within 3 points']} | {counts['off']} |"
        )
    largest = sorted(every, key=lambda c: -abs(c.difference))[:10]
    if largest:
        lines += ["", "The largest differences (ours − paper, points):", ""]
        lines += [
            f"- {c.table}, {c.row}, {c.column}: {c.difference:+.1f} (paper {100 * c.paper:.1f}, ours {100 * c.ours:.1f})"
            for c in largest
        ]
    written.append(atomic_write_text(report, "\n".join(lines) + "\n"))
    return written
