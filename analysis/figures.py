"""The paper's figures from result files (see ``infra.layout`` for where each input lives).

One function per figure; each writes ``<stem>.png`` and ``<stem>.pdf`` sized for one paper column (3.4 in
wide), with labelled axes, units and a legend, and returns the paths. A function whose inputs are missing
raises :class:`~analysis.tables.MissingInputs` naming them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display needed on compute nodes

import matplotlib.pyplot as plt  # noqa: E402

from analysis.code_errors import (  # noqa: E402
    INVALID_CODE,
    PAPER_CATEGORIES,
    category_shares,
    records_of_files,
)
from analysis.degeneration import change, read_items, summarize  # noqa: E402
from analysis.tables import MissingInputs  # noqa: E402
from eval.bootstrap import item_scores, retention_ci, score_ci  # noqa: E402
from eval.retention import LABELS, load_scores, retention_rows  # noqa: E402
from infra.experiments import (  # noqa: E402
    METHOD_LABELS,
    RECIPE_LABELS,
    RECOVERY_LABELS,
    Experiments,  # noqa: E402
    parse_recovery,
    parse_run_name,
)
from infra.files import atomic_write_json, load_jsonl, read_json  # noqa: E402
from infra.layout import BASELINE, ResultsLayout, layer_name, layer_of  # noqa: E402
from infra.task_registry import registry  # noqa: E402

COLUMN_WIDTH_IN = 3.4
CODE_TASKS = registry().of_kind("humaneval", "mbpp")
CATEGORY_COLORS = {  # the original notebook's colours where it had them
    "Passed": "#2ca02c",
    "Assertion Error": "#1f77b4",
    "Bracket/Syntax": "#d62728",
    "Other Syntax": "#ff7f0e",
    "Not Defined": "#9467bd",
    "Timeout": "#8c564b",
    "Others": "#7f7f7f",
}
plt.rcParams.update(
    {
        "font.size": 7,
        "axes.titlesize": 7,
        "axes.labelsize": 7,
        "legend.fontsize": 6,
        "xtick.labelsize": 6,
        "ytick.labelsize": 6,
        "figure.dpi": 100,
        "savefig.dpi": 300,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def plotted_data(figure: Any) -> list[dict[str, Any]]:
    """What a figure draws, per panel: its title, each line's label and points, each bar's label and value,
    read from the figure itself, so a check of the data checks what is drawn."""
    panels = []
    for ax in figure.axes:
        lines = [
            {
                "label": line.get_label(),
                "x": [float(v) for v in line.get_xdata()],
                "y": [float(v) for v in line.get_ydata()],
            }
            for line in ax.lines
        ]
        bars, horizontal = [], False
        for container in ax.containers:
            horizontal = getattr(container, "orientation", "vertical") == "horizontal"
            bars += [
                float(p.get_width() if horizontal else p.get_height())
                for p in getattr(container, "patches", [])
            ]
        ticks = [tick.get_text() for tick in (ax.get_yticklabels() if horizontal else ax.get_xticklabels())]
        panels.append({"title": ax.get_title(), "lines": lines, "bars": bars, "bar_labels": ticks})
    return panels


def _save(figure: Any, output: str | Path) -> list[Path]:
    """The figure as PNG and PDF, and what it draws as ``<name>.data.json`` (:func:`plotted_data`)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    figure.tight_layout()
    data = output.with_name(output.name + ".data.json")
    atomic_write_json(data, plotted_data(figure))
    for suffix in (".png", ".pdf"):
        path = output.with_suffix(suffix)
        temporary = path.with_name(f".{path.name}.tmp{suffix}")
        figure.savefig(temporary, bbox_inches="tight")
        temporary.replace(path)
        paths.append(path)
    plt.close(figure)
    return [*paths, data]


def _figure(height: float = 2.3, ncols: int = 1, nrows: int = 1) -> tuple[Any, Any]:
    return plt.subplots(nrows, ncols, figsize=(COLUMN_WIDTH_IN, height * nrows), squeeze=False)


# ---------------------------------------------------------------- single-layer sweep (Figures 1, 2, 4)


def sweep_layers(sweep_dir: Path) -> dict[int, dict[str, float]]:
    layers = {}
    for path in sorted(sweep_dir.glob("*.json")):
        if (layer := layer_of(path.stem)) is not None:
            layers[layer] = read_json(path)["scores"]
    return layers


def _require_sweep(layout: ResultsLayout) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    baseline = layout.sweep / f"{BASELINE}.json"
    layers = sweep_layers(layout.sweep) if layout.sweep.is_dir() else {}
    if not baseline.is_file() or not layers:
        raise MissingInputs(f"{layout.sweep}: baseline.json and layer_XXX.json (layer_pruner.sweep)")
    return read_json(baseline)["scores"], layers


def figure_sweep(results: str | Path, output: str | Path) -> list[Path]:
    """Figure 1: each task's score with one layer removed, relative to the unpruned model."""
    baseline, layers = _require_sweep(ResultsLayout(results))
    figure, axes = _figure()
    ax = axes[0][0]
    xs = sorted(layers)
    sweep = ResultsLayout(results).sweep
    for task, base in baseline.items():
        ys = [layers[x].get(task, float("nan")) / base if base else float("nan") for x in xs]
        (line,) = ax.plot(xs, ys, marker="o", markersize=2.5, linewidth=1, label=LABELS.get(task, task))
        band = sweep_retention_band(sweep, task, xs)
        if band is not None:
            ax.fill_between(xs, band[0], band[1], color=line.get_color(), alpha=0.15, linewidth=0)
    ax.axhline(1.0, color="black", linewidth=0.6, linestyle=":")
    ax.set_xlabel("layer removed (index)")
    ax.set_ylabel("score / unpruned score")
    ax.set_title("Removing a single layer")
    ax.legend(frameon=False, ncols=2)
    return _save(figure, output)


def _sweep_items(sweep_dir: Path, name: str, task: str) -> dict[str, float] | None:
    path = sweep_dir / f"{name}.{task}.jsonl"
    if not path.is_file() or not path.stat().st_size:
        return None
    return {str(r["id"]): float(r["score"]) for r in load_jsonl(path) if "score" in r}


def sweep_retention_band(sweep_dir: Path, task: str, layers: list[int]) -> tuple[list, list] | None:
    """The 95% bootstrap interval (paired over items) of each layer's retention on ``task``, from the sweep's
    response files; None when any of them is missing."""
    base = _sweep_items(sweep_dir, "baseline", task)
    if not base:
        return None
    lows, highs = [], []
    for layer in layers:
        run = _sweep_items(sweep_dir, layer_name(layer), task)
        if run is None:
            return None
        low, high = retention_ci(base, run)
        lows.append(low)
        highs.append(high)
    return lows, highs


def figure_degeneration(
    results: str | Path, output: str | Path, tasks: tuple[str, ...] | None = None
) -> list[Path]:
    """Figure 2, as the paper's notebook drew it: with one layer removed, the change from the unpruned model
    of the n-gram repetition rate (rep-2/3/4 averaged, percentage points) and of Self-BLEU-4, per dataset
    and then averaged over the datasets (GSM8K, HumanEval+, XSUM: the sweep's tasks)."""
    layout = ResultsLayout(results)
    _, layers = _require_sweep(layout)
    if tasks is None:
        tasks = tuple(
            task
            for task in registry().of_kind("math", "humaneval", "summary")
            if (layout.sweep / f"{BASELINE}.{task}.jsonl").is_file()
        )
    if not tasks:
        raise MissingInputs(f"{layout.sweep}/baseline.<task>.jsonl (layer_pruner.sweep)")
    baselines = {
        task: summarize(read_items(str(layout.sweep / f"{BASELINE}.{task}.jsonl"))) for task in tasks
    }
    xs = sorted(layers)
    curves: dict[str, list[float]] = {"repetition": [], "self_bleu_4": []}
    for x in xs:
        deltas = []
        for task in tasks:
            path = layout.sweep / f"{layer_name(x)}.{task}.jsonl"
            if path.is_file():
                deltas.append(change(summarize(read_items(str(path))), baselines[task]))
        for metric, values in curves.items():
            defined = [d[metric] for d in deltas if d[metric] is not None]
            values.append(sum(defined) / len(defined) if defined else float("nan"))
    figure, axes = _figure(ncols=2)
    titles = {"repetition": "n-gram repetition change (pp)", "self_bleu_4": "Self-BLEU-4 change"}
    for ax, (metric, values) in zip(axes[0], curves.items()):
        ax.plot(xs, values, marker="o", markersize=2.5, linewidth=1)
        ax.axhline(0.0, color="black", linewidth=0.6, linestyle=":")
        ax.set_xlabel("layer removed (index)")
        ax.set_title(titles[metric])
    figure.suptitle(f"Degeneration ({', '.join(LABELS.get(t, t) for t in tasks)})", fontsize=7)
    return _save(figure, output)


def _stacked_categories(
    ax: Any, labels: list[str], shares: list[dict[str, float]], categories: tuple[str, ...]
) -> None:
    starts = [0.0] * len(labels)
    positions = list(range(len(labels)))
    for category in categories:
        sizes = [100 * share.get(category, 0.0) for share in shares]
        if not any(sizes):
            continue
        ax.barh(positions, sizes, left=starts, height=0.8, color=CATEGORY_COLORS[category], label=category)
        starts = [b + h for b, h in zip(starts, sizes)]
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlabel("share of programs (%)")
    ax.set_xlim(0, 100)
    ax.legend(frameon=False, fontsize=5, ncols=3, loc="upper center", bbox_to_anchor=(0.3, -0.18))


def figure_code_errors_sweep(results: str | Path, output: str | Path) -> list[Path]:
    """Figure 4, as the paper's notebook drew it: with one layer removed, HumanEval+'s failed programs by
    category (Bracket/Syntax, Other Syntax, Not Defined), as shares of the failed programs."""
    layout = ResultsLayout(results)
    _, layers = _require_sweep(layout)
    tasks = registry().of_kind("humaneval")
    xs, shares = [], []
    for x in sorted(layers):
        paths = [layout.sweep / f"{layer_name(x)}.{task}.jsonl" for task in tasks]
        paths = [p for p in paths if p.is_file() and p.stat().st_size]
        if paths:
            xs.append(x)
            shares.append(category_shares(records_of_files(paths), failed_only=True))
    if len(xs) < 2:
        raise MissingInputs(f"{layout.sweep}: HumanEval+ item files (layer_XXX.humaneval.jsonl)")
    figure, axes = _figure()
    ax = axes[0][0]
    for category in INVALID_CODE:
        ax.plot(
            xs,
            [100 * share[category] for share in shares],
            marker="o",
            markersize=2.5,
            linewidth=1,
            color=CATEGORY_COLORS[category],
            label=category,
        )
    ax.set_xlabel("layer removed (index)")
    ax.set_ylabel("share of failed programs (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Invalid code with one layer removed (HumanEval+)")
    ax.legend(frameon=False)
    return _save(figure, output)


# ---------------------------------------------------------------- arithmetic probe (Figures 3, 7)


def figure_probe(results: str | Path, output: str | Path, run: str = "base") -> list[Path]:
    """Figure 3: per ablated layer, the change of the target digit's log-probability and the accuracy."""
    path = ResultsLayout(results).probe(run)
    if not path.is_file():
        raise MissingInputs(f"{path} (analysis.arithmetic_probe)")
    probe = read_json(path)
    if not probe["layers"]:
        raise MissingInputs(f"{path}: no ablated layer (run with --ablate_layers all)")
    xs = [entry["layer"] for entry in probe["layers"]]
    figure, axes = plt.subplots(2, 1, figsize=(COLUMN_WIDTH_IN, 3.0), sharex=True)
    axes[0].bar(xs, [entry["delta_logprob"] for entry in probe["layers"]], color="#1f77b4", width=0.8)
    axes[0].axhline(0.0, color="black", linewidth=0.6)
    axes[0].set_ylabel("Δ log p(target) (nats)")
    axes[0].set_title(f"Arithmetic probe ({probe['n_items']} items)")
    axes[1].plot(
        xs,
        [100 * e["accuracy"] for e in probe["layers"]],
        marker="o",
        markersize=2.5,
        linewidth=1,
        label="layer ablated",
    )
    axes[1].axhline(
        100 * probe["baseline"]["accuracy"], color="black", linestyle="--", linewidth=0.8, label="no ablation"
    )
    axes[1].axhline(10.0, color="grey", linestyle=":", linewidth=0.8, label="chance (1 of 10 digits)")
    axes[1].set_ylabel("digit top-1 accuracy (%)")
    axes[1].set_xlabel("layer ablated (index)")
    axes[1].legend(frameon=False)
    return _save(figure, output)


def probe_accuracy(path: Path, items: int | None = None) -> float:
    """A probe's accuracy without ablation, on its first ``items`` items where it has more (the probe's sample
    of n items is the first n of a larger one: Figure 7's 100 are the first of Figure 3's 200)."""
    baseline = read_json(path)["baseline"]
    hits = baseline.get("hits")
    if items and hits and len(hits) > items:
        return sum(hits[:items]) / items
    return baseline["accuracy"]


def figure_probe_recovery(
    results: str | Path | list[str | Path], output: str | Path, experiments: Experiments
) -> list[Path]:
    """Figure 7: arithmetic accuracy of the unpruned model and the runs of grid ``figure_7`` (pruned and
    recovered), each model with its own method (the grid's rows for it). Given several results trees (one per
    model), the bars are the unpruned, pruned and recovered models' means over the models, as the paper draws
    the cross-model average, and the methods are named."""
    trees = [results] if isinstance(results, (str, Path)) else list(results)
    items = experiments.probe_items.get("figure_7")
    rows: list[tuple[str, str, float, str]] = []  # (role, label, accuracy, model)
    for tree in trees:
        layout, model = ResultsLayout(tree), Path(tree).name
        mine = experiments.resolved(model) if len(trees) > 1 else experiments
        # The unpruned model's own Figure 7 probe where it has one (more items than Figure 3's), else Figure 3's.
        unpruned = layout.probe("unablated") if layout.probe("unablated").is_file() else layout.probe("base")
        if "figure_7" not in mine.artifacts or not unpruned.is_file():
            continue
        rows.append(("base", "Unpruned", probe_accuracy(unpruned, items), model))
        for run in mine.grid("figure_7").runs(mine.recipe):
            if layout.probe(run.name).is_file():
                role = "recovered" if run.recovery else "pruned"
                rows.append((role, run.label, probe_accuracy(layout.probe(run.name), items), model))
    if len(trees) > 1:
        entries = []
        for role, title in (("base", "Unpruned"), ("pruned", "Pruned"), ("recovered", "Pruned + recovery")):
            chosen = [row for row in rows if row[0] == role]
            if chosen:
                methods = "" if role == "base" else "; ".join(f"{m}: {label}" for _, label, _, m in chosen)
                label = f"{title} (n={len(chosen)})" + (f"\n{methods}" if methods else "")
                entries.append((role, label, sum(r[2] for r in chosen) / len(chosen)))
    else:
        entries = [(role, label, accuracy) for role, label, accuracy, _ in rows]
    if len(entries) < 2 or entries[0][0] != "base":
        roots = ", ".join(str(Path(tree) / "probe") for tree in trees)
        raise MissingInputs(f"{roots}: arithmetic_probe.json for base and at least one run of figure_7")
    colors = {"base": "#2ca02c", "recovered": "#1f77b4", "pruned": "#d62728"}
    figure, axes = _figure(height=1.0 + 0.3 * len(entries))
    ax = axes[0][0]
    ax.barh(
        range(len(entries)), [100 * acc for _, _, acc in entries], color=[colors[r] for r, _, _ in entries]
    )
    ax.axvline(10.0, color="grey", linestyle=":", linewidth=0.8)
    ax.set_yticks(range(len(entries)), [label for _, label, _ in entries])
    ax.invert_yaxis()
    ax.set_xlabel("digit top-1 accuracy (%)" + (f", first {items} probe items" if items else ""))
    models = ", ".join(Path(tree).name for tree in trees)
    ax.set_title("Arithmetic after pruning and recovery" + (f" (mean of {models})" if len(trees) > 1 else ""))
    return _save(figure, output)


# ---------------------------------------------------------------- recovery (Figures 5, 8)


# The original logged the training loss every 10 steps (``--logging_steps 10``), each value the mean over the
# steps since the last log; its Figure 5 curves are that quantity as a perplexity.
ORIGINAL_LOGGING_STEPS = 10


def training_perplexity(records: list[dict], window: int = ORIGINAL_LOGGING_STEPS) -> list[tuple[int, float]]:
    """exp(mean training loss) over consecutive windows of ``window`` logged steps, at each window's last
    step, as the original's logs give it."""
    losses = sorted(
        (r["step"], r["train_loss"]) for r in records if "train_loss" in r and not r.get("summary")
    )
    points = []
    for start in range(0, len(losses) - window + 1, window):
        chunk = losses[start : start + window]
        points.append((chunk[-1][0], math.exp(min(sum(loss for _, loss in chunk) / len(chunk), 50.0))))
    return points


def _perplexity_curves(
    directories: dict[str, Path], quantity: str = "held_out"
) -> dict[str, list[tuple[int, float]]]:
    """Per run: ``held_out`` perplexity at each evaluation, or ``training`` perplexity per logging window."""
    curves = {}
    for name, directory in directories.items():
        path = directory / "train" / "metrics.jsonl"
        if path.is_file():
            records = load_jsonl(path)
            if quantity == "training":
                points = training_perplexity(records)
            else:
                points = [(r["step"], r["eval_perplexity"]) for r in records if "eval_perplexity" in r]
            if points:
                curves[name] = points
    return curves


def figure_perplexity(
    results: str | Path, output: str | Path, experiments: Experiments, artifact: str = "figure_5"
) -> list[Path]:
    """Figure 5: perplexity over fine-tuning steps of the recovered runs of grid ``figure_5``.

    Top row, the paper's quantity as the original code could draw it: training perplexity, exp of the mean
    training loss over each 10 logged steps. Bottom row: held-out perplexity at each evaluation. One column
    per fine-tuning dataset; colour = pruning method, solid = SGR, dashed = dataset responses."""
    layout = ResultsLayout(results)
    names = [
        n for n in experiments.grid(artifact).run_names(experiments.recipe) if parse_run_name(n).recovery
    ]
    directories = {name: layout.run_dir(name) for name in names}
    rows = {
        "training": _perplexity_curves(directories, "training"),
        "held_out": _perplexity_curves(directories, "held_out"),
    }
    if not rows["training"] and not rows["held_out"]:
        raise MissingInputs(f"{layout.root / 'recovered'}/<run of {artifact}>/train/metrics.jsonl")
    datasets = sorted({parse_run_name(n).data for curves in rows.values() for n in curves})
    figure, axes = _figure(height=2.4, ncols=len(datasets), nrows=2)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    methods = sorted({parse_run_name(n).method for curves in rows.values() for n in curves})
    titles = {
        "training": f"Training perplexity, mean over {ORIGINAL_LOGGING_STEPS} steps",
        "held_out": "Held-out perplexity",
    }
    for row, (quantity, curves) in enumerate(rows.items()):
        for column, data in enumerate(datasets):
            ax = axes[row][column]
            _perplexity_panel(
                ax, {n: p for n, p in curves.items() if parse_run_name(n).data == data}, colors, methods
            )
            ax.set_title(f"{titles[quantity]} ({data})")
        axes[row][0].set_ylabel(f"{titles[quantity].split(',')[0].lower()} (log scale)")
    axes[0][0].legend(frameon=False, fontsize=5)
    return _save(figure, output)


def _perplexity_panel(ax: Any, runs: dict[str, list], colors: list[str], methods: list[str]) -> None:
    for name, points in runs.items():
        run = parse_run_name(name)
        ax.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            "-" if run.recovery == "sgr" else "--",
            color=colors[methods.index(run.method) % len(colors)],
            marker="o",
            markersize=2,
            linewidth=1,
            label=f"{METHOD_LABELS.get(run.method, run.method)} + {RECOVERY_LABELS[run.recovery]}",
        )
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")


def bar_errors(scores: dict[str, float], eval_dir: Path, tasks: list[str]) -> list[tuple[float, float]]:
    """Per task, the distances from the score down and up to its bootstrap 95% interval over items (0, 0
    where the run kept no item file)."""
    errors = []
    for task in tasks:
        items = item_scores(eval_dir, task)
        if task not in scores or not items:
            errors.append((0.0, 0.0))
            continue
        low, high = score_ci(items)
        errors.append((max(scores[task] - low, 0.0), max(high - scores[task], 0.0)))
    return errors


def _task_bars(ax: Any, bars: list[tuple[str, dict[str, float], Path]], tasks: list[str]) -> None:
    """Grouped bars: per task, one bar per model (accuracy in percent), with 95% intervals over items."""
    width = 0.8 / len(bars)
    for index, (label, scores, eval_dir) in enumerate(bars):
        xs = [t + index * width for t in range(len(tasks))]
        errors = bar_errors(scores, eval_dir, tasks)
        yerr = [[100 * e[0] for e in errors], [100 * e[1] for e in errors]]
        ax.bar(
            xs,
            [100 * scores.get(task, float("nan")) for task in tasks],
            width=width,
            label=label,
            yerr=yerr,
            error_kw={"elinewidth": 0.6, "capsize": 1.5},
        )
    ax.set_xticks([t + 0.4 - width / 2 for t in range(len(tasks))], [LABELS.get(t, t) for t in tasks])
    ax.set_ylabel("score (%)")
    ax.legend(frameon=False, fontsize=5, loc="upper right")


def figure_full_ft(results: str | Path, output: str | Path, experiments: Experiments) -> list[Path]:
    """Figure 12: QLoRA against full fine-tuning (grid ``figure_12``): the grid's tasks (GSM8K) for the
    unpruned model and each run, and the held-out perplexity of each fine-tuning run."""
    layout = ResultsLayout(results)
    grid = experiments.grid("figure_12")
    if not layout.base_eval.is_dir():
        raise MissingInputs(f"{layout.base_eval} (the unpruned model's scores)")
    runs = layout.grid_runs(grid.run_names(experiments.recipe))
    if len([run for run in runs if run.recovery]) < 2:
        raise MissingInputs(f"{layout.root / 'recovered'}: the runs of figure_12 with every recipe evaluated")
    default = RECIPE_LABELS.get(experiments.recipe, experiments.recipe)
    bars = [("Unpruned", load_scores(layout.base_eval), layout.base_eval)]
    for run, directory in runs.items():
        label = run.label if run.recipe or not run.recovery else f"{run.label} [{default}]"
        bars.append((label, load_scores(directory / "eval"), directory / "eval"))
    tasks = list(grid.tasks) or [t for t in bars[0][1] if t in registry().tasks]
    figure, axes = _figure(height=2.4, ncols=2)
    _task_bars(axes[0][0], bars, tasks)
    axes[0][0].set_title("After recovery")
    curves = _perplexity_curves({run.name: directory for run, directory in runs.items() if run.recovery})
    ax = axes[0][1]
    for name, points in curves.items():
        run = parse_run_name(name)
        ax.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            marker="o",
            markersize=2,
            linewidth=1,
            label=RECIPE_LABELS.get(run.recipe or experiments.recipe, run.recipe),
        )
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_title("Held-out perplexity")
    if curves:
        ax.legend(frameon=False, fontsize=5)
    return _save(figure, output)


def figure_upper_bound(results: str | Path, output: str | Path, experiments: Experiments) -> list[Path]:
    """Figure 11 (appendix A.6.2): the upper-bound task (GSM8K) for the unpruned model, the model pruned by
    the GSM8K-only search, and its fine-tuned runs (QLoRA and full)."""
    layout = ResultsLayout(results)
    if not layout.base_eval.is_dir():
        raise MissingInputs(f"{layout.base_eval} (the unpruned model's scores)")
    runs = {n: p for n, p in layout.subruns("upper_bound").items() if (p / "eval").is_dir()}
    if not runs:
        raise MissingInputs(f"{layout.root / 'upper_bound'}/<name>/eval")
    tasks = list(experiments.upper_bound.tasks if experiments.upper_bound else registry().of_kind("math"))
    bars = [("Unpruned", load_scores(layout.base_eval), layout.base_eval)]
    bars += [
        ("Pruned" if name == "pruned" else name, load_scores(p / "eval"), p / "eval")
        for name, p in runs.items()
    ]
    figure, axes = _figure(height=2.4)
    _task_bars(axes[0][0], bars, [t for t in tasks if any(t in scores for _, scores, _ in bars)])
    axes[0][0].set_title("Upper bound: task-specific recovery")
    return _save(figure, output)


BASE_CODE_TASKS = ("humaneval",)


def figure_code_errors_models(
    results: str | Path, output: str | Path, experiments: Experiments
) -> list[Path]:
    """Figure 8, as the paper's notebook drew it: the unpruned model on HumanEval+ and the runs of grid
    ``figure_8`` (SGR on Dolci; each model its own method) on HumanEval+ and MBPP+ separately, as shares of all
    programs per category."""
    layout = ResultsLayout(results)
    grid = experiments.grid("figure_8")
    candidates = [("Unpruned", layout.base_eval)]
    for run, directory in layout.grid_runs(grid.run_names(experiments.recipe)).items():
        candidates.append((run.label, directory / "eval"))
    recoveries = [parse_recovery(r) for r in grid.recoveries]
    recovery = next((kind for kind, _ in recoveries if kind), "sgr")
    data = ", ".join(sorted({dataset for _, dataset in recoveries if dataset}))
    labels, shares = [], []
    for label, directory in candidates:
        # The original's notebook drew each unpruned model on HumanEval+ alone, its recovered model on both.
        for task in BASE_CODE_TASKS if directory == layout.base_eval else CODE_TASKS:
            path = directory / f"{task}.jsonl"
            if path.is_file() and path.stat().st_size:
                labels.append(f"{label} ({LABELS.get(task, task)})")
                shares.append(category_shares(records_of_files([path])))
    if len({label.split(" (")[0] for label in labels}) < 2:
        raise MissingInputs(f"{layout.root}: code item files of the unpruned and a {recovery} model")
    figure, axes = plt.subplots(1, 1, figsize=(COLUMN_WIDTH_IN, 1.0 + 0.22 * len(labels)), squeeze=False)
    _stacked_categories(axes[0][0], labels, shares, PAPER_CATEGORIES)
    axes[0][0].set_title(f"Code outcomes after {RECOVERY_LABELS.get(recovery, recovery)} ({data})")
    return _save(figure, output)


# ---------------------------------------------------------------- ratios (Figure 6) and BI profile


def figure_ratios(
    results: str | Path, output: str | Path, experiments: Experiments, artifact: str = "table_6"
) -> list[Path]:
    """Figure 6 (grid ``table_6``) and Figure 14 (grid ``figure_14``): mean retention against the share of
    layers removed; colour = method, line style = recovery (solid SGR, dashed dataset responses, dotted
    none)."""
    layout = ResultsLayout(results)
    if not layout.base_eval.is_dir():
        raise MissingInputs(f"{layout.base_eval} (the unpruned model's scores)")
    baseline = load_scores(layout.base_eval)
    runs = layout.grid_runs(experiments.grid(artifact).run_names(experiments.recipe))
    num_layers = _num_layers(layout)
    lines: dict[tuple[str, str | None, str | None], list] = {}
    for run, directory in runs.items():
        _, rows = retention_rows(
            baseline,
            {run.name: load_scores(directory / "eval")},
            baseline_dir=layout.base_eval,
            run_dirs={run.name: directory / "eval"},
        )
        share = (
            run.amount_value
            if run.is_percent
            else (100 * run.amount_value / num_layers if num_layers else None)
        )
        if share is not None:
            lines.setdefault((run.method, run.recovery, run.data), []).append((share, rows[0]))
    if not lines or max(len(points) for points in lines.values()) < 2:
        raise MissingInputs(
            f"{layout.root}: runs of {artifact} for one method at two or more pruning amounts"
        )
    panels = [
        (group, title)
        for group, title in (("generative_mean", "Generative"), ("classification_mean", "Classification"))
        if any(row.get(group) is not None for points in lines.values() for _, row in points)
    ]
    if not panels:
        raise MissingInputs(
            f"{layout.root}: a defined retention (the unpruned model scores 0 on every task of the results)"
        )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    methods = sorted({method for method, _, _ in lines})
    styles = {"sgr": "-", "sft": "--", None: ":"}
    figure, axes = _figure(height=2.4, ncols=len(panels))
    for ax, (group, title) in zip(axes[0], panels):
        for (method, recovery, data), points in sorted(lines.items(), key=lambda kv: str(kv[0])):
            points.sort(key=lambda p: p[0])
            kept = [p for p in points if p[1].get(group) is not None]
            xs = [p[0] for p in kept]
            ys = [100 * p[1][group] for p in kept]
            bounds = [p[1]["ci"].get(group) for p in kept]
            label = METHOD_LABELS.get(method, method)
            label += f" + {RECOVERY_LABELS[recovery]} ({data})" if recovery else " (no recovery)"
            if xs:
                ax.plot(
                    xs,
                    ys,
                    styles.get(recovery, "-"),
                    marker="o",
                    markersize=2.5,
                    linewidth=1,
                    color=colors[methods.index(method) % len(colors)],
                    label=label,
                )
                if all(b is not None for b in bounds):  # the 95% interval over items (eval.bootstrap)
                    ax.fill_between(
                        xs,
                        [100 * b[0] for b in bounds],
                        [100 * b[1] for b in bounds],
                        color=colors[methods.index(method) % len(colors)],
                        alpha=0.12,
                        linewidth=0,
                    )
        ax.set_xlabel("layers removed (%)")
        ax.set_title(title)
    axes[0][0].set_ylabel("mean retention (%)")
    axes[0][0].legend(frameon=False, fontsize=5)
    return _save(figure, output)


def _num_layers(layout: ResultsLayout) -> int | None:
    for directory in layout.runs("pruned").values():
        plan = directory / "model" / "plan.json"
        if plan.is_file():
            return int(read_json(plan)["num_layers"])
    return None


def figure_bi_profile(results: str | Path, output: str | Path) -> list[Path]:
    """Cosine between each layer's input and output (the paper's cosine notebook), and BI = 1 - cosine."""
    path = ResultsLayout(results).bi_profile
    if not path.is_file():
        raise MissingInputs(f"{path} (analysis.bi_profile)")
    profile = read_json(path)
    xs = list(range(len(profile["cosine"])))
    figure, axes = _figure()
    ax = axes[0][0]
    ax.plot(xs, profile["cosine"], marker="o", markersize=2.5, linewidth=1, label="cos(input, output)")
    ax.plot(
        xs,
        profile["block_influence"],
        marker="s",
        markersize=2.5,
        linewidth=1,
        label="block influence (1 - cos)",
    )
    ax.set_xlabel("layer (index)")
    ax.set_ylabel("mean over tokens and texts")
    ax.set_ylim(0, 1.02)
    ax.set_title("Block-influence profile")
    ax.legend(frameon=False)
    return _save(figure, output)
