"""Retention = pruned score / unpruned score, per task and as means (paper Tables 1, 2, 5, 6).

    python -m eval.retention --baseline outputs/llama/base --runs outputs/llama/bi-25 outputs/llama/reverse-25 \\
        --output outputs/llama/retention.md

A results directory holds ``<task>.json`` files (generative) and/or ``classification.json`` (lm-eval summary).
The table is written as Markdown, CSV and LaTeX (the output path's stem with each suffix).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from eval.bootstrap import RESAMPLES, item_scores
from eval.classification import PAPER_TASKS, TOY_TASKS
from infra.config import ConfigError, parse_cli, report_error
from infra.files import atomic_write_text, read_json
from infra.paths import unique_labels
from infra.task_registry import registry

CLASSIFICATION_TASKS = (*PAPER_TASKS, *TOY_TASKS)
GENERATIVE_TASKS = tuple(registry().tasks)
LABELS = {
    **{task: registry().label(task) for task in GENERATIVE_TASKS},
    "hellaswag": "HellaSwag",
    "piqa": "PIQA",
    "mmlu": "MMLU",
    "winogrande": "WinoGrande",
    "openbookqa": "OpenBookQA",
    "arc_easy": "ARC-E",
    "arc_challenge": "ARC-C",
    "toy_choice": "Toy choice",
}


def load_scores(results_dir: str | Path) -> dict[str, float]:
    """Task scores found in a results directory (recursively: ``generative/`` and ``classification/``)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: no such results directory")
    scores: dict[str, float] = {}
    for path in sorted(results_dir.rglob("*.json")):
        if path.name == "classification.json":
            for task, value in read_json(path)["scores"].items():
                scores[task] = float(value)
        elif path.stem in GENERATIVE_TASKS:
            data = read_json(path)
            if isinstance(data, dict) and "score" in data:
                scores[path.stem] = float(data["score"])
    if not scores:
        raise FileNotFoundError(f"{results_dir}: no task results (<task>.json or classification.json)")
    return scores


def retention_rows(
    baseline: dict[str, float],
    runs: dict[str, dict[str, float]],
    baseline_dir: str | Path | None = None,
    run_dirs: dict[str, str | Path] | None = None,
) -> tuple[list[str], list[dict]]:
    """One row per run: per-task retention, the classification mean and the generative mean.

    With the results directories (``baseline_dir``, ``run_dirs`` by run name), each cell whose runs have item
    files (generative ``<task>.jsonl``, lm-eval ``classification/<task>.jsonl``) also gets its bootstrap 95%
    interval over items (``row["ci"][column] = (low, high)``, :mod:`eval.bootstrap`)."""
    from eval.bootstrap import mean_retention_ci, retention_ci

    tasks = [t for t in (*CLASSIFICATION_TASKS, *GENERATIVE_TASKS) if t in baseline]
    base_items = {t: item_scores(baseline_dir, t) for t in tasks} if baseline_dir else {}
    rows = []
    for name, scores in runs.items():
        row: dict = {"run": name, "ci": {}}
        run_dir = (run_dirs or {}).get(name)
        pairs = {}
        for task in tasks:
            row[task] = scores[task] / baseline[task] if task in scores and baseline[task] else None
            base, run = (
                base_items.get(task),
                item_scores(run_dir, task) if run_dir and task in base_items else None,
            )
            if row[task] is not None and base and run:
                row["ci"][task] = retention_ci(base, run)
                pairs[task] = (base, run)
        for group, members in (
            ("classification_mean", CLASSIFICATION_TASKS),
            ("generative_mean", GENERATIVE_TASKS),
        ):
            values = [row[t] for t in members if t in tasks and row[t] is not None]
            row[group] = sum(values) / len(values) if values else None
        for group, members in (
            ("classification_mean", CLASSIFICATION_TASKS),
            ("generative_mean", GENERATIVE_TASKS),
        ):
            present = [t for t in members if t in tasks and row[t] is not None]
            if present and all(t in row["ci"] for t in present):
                row["ci"][group] = mean_retention_ci([pairs[t] for t in present])
        rows.append(row)
    groups = [
        group
        for group, members in (
            ("classification_mean", CLASSIFICATION_TASKS),
            ("generative_mean", GENERATIVE_TASKS),
        )
        if any(t in tasks for t in members)
    ]
    columns = ["run", *tasks, *groups]
    return columns, rows


def _cell(value, interval: tuple[float, float] | None = None) -> str:
    if value is None:
        return "–"
    if interval is None:
        return f"{100 * value:.1f}"
    return f"{100 * value:.1f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def _manifest_seed(path: Path) -> int | None:
    if not path.is_file():
        return None
    return (json.loads(path.read_text()).get("seeds") or {}).get("seed")


def run_seeds(base_dir: str | Path | None, eval_dirs: Iterable[str | Path] = ()) -> str:
    """The seeds the runs used, read from their manifests: generation (``eval/``), classification
    (``eval/classification/``) and fine-tuning (the run's ``train/``); a kind with several is listed."""
    seeds: dict[str, set] = {"generation": set(), "classification": set(), "fine-tuning": set()}
    for directory in [base_dir, *eval_dirs] if base_dir else list(eval_dirs):
        directory = Path(directory)
        for kind, path in (
            ("generation", directory / "manifest.json"),
            ("classification", directory / "classification" / "manifest.json"),
            ("fine-tuning", directory.parent / "train" / "manifest.json"),
        ):
            seed = _manifest_seed(path)
            if seed is not None:
                seeds[kind].add(seed)
    parts = [f"{kind} seed {', '.join(map(str, sorted(v)))}" for kind, v in seeds.items() if v]
    return "; ".join(parts) if parts else "seeds unrecorded"


def caption(base_dir: str | Path | None, eval_dirs: Iterable[str | Path] = ()) -> str:
    """What a retention table's cells are, with the items per task and the seeds."""
    counts = []
    for task in (*CLASSIFICATION_TASKS, *GENERATIVE_TASKS):
        items = item_scores(base_dir, task) if base_dir else None
        if items:
            counts.append(f"{LABELS.get(task, task)} {len(items)}")
    text = "Retention (%) = score / unpruned score"
    if counts:
        text += (
            f"; [95% bootstrap interval over items, {RESAMPLES} resamples, paired by item where both runs "
            f"scored the same items]; items per task: {', '.join(counts)}; {run_seeds(base_dir, eval_dirs)}"
        )
    return text + "."


def render(columns: list[str], rows: list[dict], caption_text: str | None = None) -> dict[str, str]:
    header = [LABELS.get(c, c.replace("_", " ").title()) if c != "run" else "Run" for c in columns]
    markdown = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    if caption_text:
        markdown = [caption_text, "", *markdown]
    latex = [
        r"\begin{tabular}{l" + "r" * (len(columns) - 1) + "}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    with_ci = [c for c in columns[1:] if any(c in row.get("ci", {}) for row in rows)]
    writer.writerow(columns + [f"{c}_{end}" for c in with_ci for end in ("low", "high")])
    for row in rows:
        intervals = row.get("ci", {})
        cells = [str(row["run"])] + [_cell(row[c], intervals.get(c)) for c in columns[1:]]
        markdown.append("| " + " | ".join(cells) + " |")
        latex.append(" & ".join(c.replace("_", r"\_").replace("%", r"\%") for c in cells) + r" \\")
        bounds = ["" if c not in intervals else f"{intervals[c][i]:.6f}" for c in with_ci for i in (0, 1)]
        writer.writerow(
            [row["run"]] + ["" if row[c] is None else f"{row[c]:.6f}" for c in columns[1:]] + bounds
        )
    latex += [r"\bottomrule", r"\end{tabular}"]
    if caption_text:
        latex.append("% " + caption_text)
    return {".md": "\n".join(markdown) + "\n", ".csv": buffer.getvalue(), ".tex": "\n".join(latex) + "\n"}


@dataclass
class RetentionArgs:
    baseline: str
    runs: list[str]
    output: str = field(metadata={"help": "table path; .md, .csv and .tex are written beside each other"})
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.names and len(self.names) != len(self.runs):
            raise ConfigError(f"key 'names': {len(self.names)} names for {len(self.runs)} runs")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --runs takes several paths: gather them into one comma-separated value.
    if "--runs" in argv:
        start = argv.index("--runs") + 1
        end = start
        while end < len(argv) and not argv[end].startswith("--"):
            end += 1
        argv = argv[: start - 1] + [f"--runs={','.join(argv[start:end])}"] + argv[end:]
    args = parse_cli(RetentionArgs, argv, doc=__doc__)
    try:
        baseline = load_scores(args.baseline)
        names = unique_labels(args.runs, args.names, key="names")
        runs = {name: load_scores(run) for name, run in zip(names, args.runs)}
    except (FileNotFoundError, KeyError, ValueError) as error:
        return report_error(error)
    columns, rows = retention_rows(baseline, runs, args.baseline, dict(zip(names, args.runs)))
    output = Path(args.output)
    rendered = render(columns, rows, caption(args.baseline, args.runs))
    for suffix, text in rendered.items():
        atomic_write_text(output.with_suffix(suffix), text)
    print(rendered[".md"])
    print(f"[retention] wrote {output.with_suffix('.md')}, .csv and .tex")
    return 0


if __name__ == "__main__":
    sys.exit(main())
