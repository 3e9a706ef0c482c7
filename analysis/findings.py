"""The paper's findings, tested on one model's results with bootstrap 95% intervals over items.

    python -m analysis.findings --results outputs/toy/toy-llama --experiments configs/experiments/toy.yaml

1. Generative retention is below classification retention after pruning (grid ``table_1``, the pruned
   models): estimate = classification mean retention - generative mean retention, averaged over methods.
2. SGR beats fine-tuning on the dataset's own responses (grid ``table_2``, same method, amount and data):
   estimate = generative mean retention of SGR - that of SFT, paired by item.
3. SGR recovers part of the pruning loss (``table_2``): generative mean retention after SGR - before.
4. The arithmetic probe drops when layers go (``figure_7``, the pruned models): unpruned probe accuracy -
   pruned probe accuracy, paired by item.
5. Pruned models' answers degenerate (``table_1``, the pruned models; Figure 2's measure): rep-4 of each
   answer (percent, answers of at least 4 words) minus the unpruned model's answer to the same item,
   averaged over the generative tasks and models.
6. Removing one layer alone drops the arithmetic probe (Figure 3's critical layer): the layer whose ablation
   drops ``probe/base`` most is measured against the unpruned model on fresh items (``probe/critical``,
   the study's ``critical_probe_items``), paired by item, so choosing the largest of many drops does not
   inflate it; without that probe, chosen on ``probe/base``'s even-numbered items and measured on its
   odd-numbered ones.

A finding holds when its interval excludes zero on the side the paper claims; one whose runs are missing is
reported with ``holds: null``. Nothing is tuned: what the results say is printed, whichever way it goes.
Writes ``findings.json`` (a list of ``{"finding", "holds", "estimate", "ci", "n_comparisons", "evidence"}``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval.bootstrap import item_scores, paired_ratio, percentile_interval
from eval.retention import CLASSIFICATION_TASKS, GENERATIVE_TASKS
from infra.config import parse_cli, run_cli
from infra.experiments import (
    DEFAULT_EXPERIMENTS,
    Experiments,
    load_experiments,
    parse_run_name,
)
from infra.files import atomic_write_json, load_jsonl, read_json
from infra.layout import ResultsLayout

FINDINGS = (
    "generative retention is below classification retention after pruning",
    "SGR recovers more than fine-tuning on the dataset's own responses",
    "SGR recovers part of the pruning loss",
    "the arithmetic probe drops when layers are removed",
    "pruned models' answers degenerate (rep-4 rises)",
    "removing one layer alone drops the arithmetic probe (a critical layer)",
)
DEGENERATION_MEASURE = "rep_4"


def _mean_retention(
    base_dir: Path, plus_dir: Path, minus_dir: Path | None, tasks: tuple[str, ...], rng
) -> tuple[float, np.ndarray] | None:
    """Mean over ``tasks`` (those with items in every run and a non-zero unpruned score)."""
    estimates, draws = [], []
    for task in tasks:
        base, plus = item_scores(base_dir, task), item_scores(plus_dir, task)
        minus = item_scores(minus_dir, task) if minus_dir is not None else None
        if not base or not plus or (minus_dir is not None and not minus) or not any(base.values()):
            continue
        estimate, task_draws = paired_ratio(base, plus, minus, rng)
        estimates.append(estimate)
        draws.append(task_draws)
    if not estimates:
        return None
    return float(np.mean(estimates)), np.nanmean(np.stack(draws), axis=0)


def _difference(a: dict[str, float], b: dict[str, float], rng) -> tuple[float, np.ndarray]:
    """mean(a) - mean(b) over the items both have, and its bootstrap draws (items resampled jointly)."""
    return paired_ratio(dict.fromkeys(set(a) & set(b), 1.0), a, b, rng)


def _result(index: int, parts: list[tuple[float, np.ndarray]], evidence: str) -> dict[str, Any]:
    if not parts:
        return {
            "finding": FINDINGS[index],
            "holds": None,
            "estimate": None,
            "ci": None,
            "n_comparisons": 0,
            "evidence": evidence,
        }
    estimate = float(np.mean([p[0] for p in parts]))
    ci = list(percentile_interval(np.nanmean(np.stack([p[1] for p in parts]), axis=0)))
    return {
        "finding": FINDINGS[index],
        "holds": bool(ci[0] > 0),
        "estimate": estimate,
        "ci": ci,
        "n_comparisons": len(parts),
        "evidence": evidence,
    }


def findings(results: str | Path, experiments: Experiments, seed: int = 0) -> list[dict[str, Any]]:
    layout = ResultsLayout(results)
    rng = np.random.default_rng(seed)
    base = layout.base_eval
    out = []

    # 1. classification minus generative retention of each pruned model
    parts = []
    for run, directory in layout.grid_runs(experiments.grid("table_1").run_names(experiments.recipe)).items():
        if run.recovery is not None:
            continue
        classification = _mean_retention(base, directory / "eval", None, CLASSIFICATION_TASKS, rng)
        generative = _mean_retention(base, directory / "eval", None, GENERATIVE_TASKS, rng)
        if classification and generative:
            parts.append((classification[0] - generative[0], classification[1] - generative[1]))
    out.append(_result(0, parts, "classification - generative mean retention, pruned models of table_1"))

    # 2. and 3. SGR against SFT and against no recovery, same method, amount and data
    table_2 = layout.grid_runs(experiments.grid("table_2").run_names(experiments.recipe))
    by_name = {run.name: directory for run, directory in table_2.items()}
    versus_sft, versus_pruned = [], []
    for run, directory in table_2.items():
        if run.recovery != "sgr" or run.recipe:
            continue
        sft = by_name.get(run.with_recovery("sft").name)
        pruned = by_name.get(run.pruned.name)
        if sft is not None:
            part = _mean_retention(base, directory / "eval", sft / "eval", GENERATIVE_TASKS, rng)
            versus_sft += [part] if part else []
        if pruned is not None:
            part = _mean_retention(base, directory / "eval", pruned / "eval", GENERATIVE_TASKS, rng)
            versus_pruned += [part] if part else []
    out.append(_result(1, versus_sft, "SGR - SFT generative mean retention, paired by item, table_2"))
    out.append(_result(2, versus_pruned, "SGR - pruned generative mean retention, paired by item, table_2"))

    # 4. probe accuracy of the unpruned model minus each pruned model's
    parts = []
    # The unpruned model's probe: Figure 7's own when it has more items than Figure 3's (probe/unablated).
    base_probe = layout.probe("unablated") if layout.probe("unablated").is_file() else layout.probe("base")
    if base_probe.is_file():
        base_hits = read_json(base_probe)["baseline"].get("hits")
        for name in experiments.grid("figure_7").run_names(experiments.recipe):
            path = layout.probe(name)
            if parse_run_name(name).recovery is not None or not path.is_file() or base_hits is None:
                continue
            hits = read_json(path)["baseline"].get("hits")
            if hits is None or len(hits) > len(base_hits):
                continue
            # The probe's sample of n items is the first n of a larger one (Figure 7's 100 of Figure 3's 200).
            a = {str(i): float(h) for i, h in enumerate(base_hits[: len(hits)])}
            b = {str(i): float(h) for i, h in enumerate(hits)}
            parts.append(_difference(a, b, rng))
    out.append(_result(3, parts, "unpruned - pruned arithmetic-probe accuracy, paired by item, figure_7"))
    out.append(_degeneration(layout, experiments, rng))
    out.append(_critical_layer(layout, rng))
    return out


def _response_measure(directory: Path, task: str) -> dict[str, float]:
    """``{item id: rep-4 in percent}`` of a run's answers to ``task`` (answers too short for it left out)."""
    from analysis.degeneration import response_metrics

    path = directory / f"{task}.jsonl"
    if not path.is_file():
        return {}
    values = {}
    for record in load_jsonl(path):
        value = response_metrics(record.get("response") or "")[DEGENERATION_MEASURE]
        if value is not None:
            values[str(record["id"])] = 100.0 * value
    return values


def _degeneration(layout: ResultsLayout, experiments: Experiments, rng) -> dict[str, Any]:
    parts = []
    base = {task: _response_measure(layout.base_eval, task) for task in GENERATIVE_TASKS}
    for run, directory in layout.grid_runs(experiments.grid("table_1").run_names(experiments.recipe)).items():
        if run.recovery is not None:
            continue
        for task, base_values in base.items():
            pruned = _response_measure(directory / "eval", task)
            if len(set(base_values) & set(pruned)) >= 2:
                parts.append(_difference(pruned, base_values, rng))
    evidence = "pruned - unpruned rep-4 (percent) of the answer to each item, table_1's pruned models"
    return _result(4, parts, evidence)


def _critical_layer(layout: ResultsLayout, rng) -> dict[str, Any]:
    measured = layout.probe("critical")
    if measured.is_file():  # chosen on probe/base's items, measured on fresh ones (critical_probe_items)
        report = read_json(measured)
        (entry,) = report["layers"]
        base = {str(i): float(h) for i, h in enumerate(report["baseline"]["hits"])}
        ablated = {str(i): float(h) for i, h in enumerate(entry["hits"])}
        evidence = (
            f"probe/critical: accuracy without - with layer {entry['layer']} (chosen on probe/base's "
            f"{read_json(layout.probe('base'))['n_items']} items), on {len(base)} fresh items"
        )
        result = _result(5, [_difference(base, ablated, rng)], evidence)
        result["layer"] = entry["layer"]
        return result
    path = layout.probe("base")
    report = read_json(path) if path.is_file() else {}
    base_hits = report.get("baseline", {}).get("hits")
    layers = [entry for entry in report.get("layers", []) if entry.get("hits") is not None]
    evidence = "probe/base: accuracy without - with the layer, chosen on even items, measured on odd items"
    if not base_hits or not layers or len(base_hits) < 4:
        return _result(5, [], evidence)

    def accuracy(hits: list[int], parity: int) -> float:
        chosen = hits[parity::2]
        return sum(chosen) / len(chosen)

    chosen = max(layers, key=lambda e: (accuracy(base_hits, 0) - accuracy(e["hits"], 0), -e["layer"]))
    held_out = {str(i): float(h) for i, h in enumerate(base_hits) if i % 2 == 1}
    ablated = {str(i): float(h) for i, h in enumerate(chosen["hits"]) if i % 2 == 1}
    result = _result(5, [_difference(held_out, ablated, rng)], f"{evidence} (layer {chosen['layer']})")
    result["layer"] = chosen["layer"]
    return result


def report(items: list[dict[str, Any]]) -> str:
    lines = []
    for number, item in enumerate(items, 1):
        if item["holds"] is None:
            verdict, numbers = "NOT TESTED", "(its runs are missing)"
        else:
            verdict = "HOLDS" if item["holds"] else "DOES NOT HOLD"
            low, high = item["ci"]
            numbers = (
                f"{item['estimate']:+.3f} [{low:+.3f}, {high:+.3f}], {item['n_comparisons']} comparison(s)"
            )
        lines.append(f"({number}) {item['finding']}: {verdict} at this scale; {numbers}; {item['evidence']}")
    return "\n".join(lines)


def write_findings(results: str | Path, output: str | Path, experiments: Experiments) -> list[Path]:
    from analysis.tables import MissingInputs

    items = findings(results, experiments)
    if all(item["holds"] is None for item in items):
        raise MissingInputs(f"{results}: the runs of table_1, table_2 and figure_7 (with item files)")
    output = Path(output)
    path = atomic_write_json(output.parent / "findings.json", items)
    print(report(items))
    return [path]


@dataclass
class FindingsArgs:
    results: str = field(metadata={"help": "one model's results tree (infra/layout.py)"})
    experiments: str = str(DEFAULT_EXPERIMENTS)
    output: str = field(default="", metadata={"help": "default: <results>/artifacts/findings.json"})
    seed: int = 0


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(FindingsArgs, argv, doc=__doc__)

    def run(a: FindingsArgs) -> None:
        items = findings(a.results, load_experiments(a.experiments), a.seed)
        output = Path(a.output or Path(a.results) / "artifacts" / "findings.json")
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(output, items)
        print(report(items))
        print(f"[findings] -> {output}")

    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
