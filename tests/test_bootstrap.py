"""Bootstrap intervals over items (eval/bootstrap.py): equal to a direct computation, and shown in tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval import bootstrap
from eval.bootstrap import RESAMPLES, paired_difference, retention_ci, score_ci
from eval.retention import caption, render, retention_rows


def direct_percentile_interval(draws: list[float]) -> tuple[float, float]:
    ordered = sorted(draws)

    # numpy's default (linear) percentile, written out: position p/100 * (n - 1) between order statistics.
    def at(p: float) -> float:
        position = p / 100 * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return at(2.5), at(97.5)


def constructed(n: int, accuracy: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {f"task/{i}": float(rng.random() < accuracy) for i in range(n)}


def test_score_interval_equals_a_direct_computation():
    scores = constructed(50, 0.6, seed=1)
    values = list(scores.values())
    rng = np.random.default_rng(0)
    draws = []
    index = rng.integers(0, len(values), size=(RESAMPLES, len(values)))
    for row in index:
        draws.append(sum(values[i] for i in row) / len(row))
    assert score_ci(scores, seed=0) == pytest.approx(direct_percentile_interval(draws), abs=1e-12)


def test_paired_retention_interval_equals_a_direct_computation():
    base = constructed(40, 0.8, seed=2)
    run = {k: v * (i % 3 != 0) for i, (k, v) in enumerate(base.items())}  # loses every third item
    ids = sorted(base)
    rng = np.random.default_rng(0)
    index = rng.integers(0, len(ids), size=(RESAMPLES, len(ids)))
    draws = []
    for row in index:
        numerator = sum(run[ids[i]] for i in row)
        denominator = sum(base[ids[i]] for i in row)
        draws.append(numerator / denominator)
    low, high = retention_ci(base, run, seed=0)
    assert (low, high) == pytest.approx(direct_percentile_interval(draws), abs=1e-12)
    estimate = sum(run.values()) / sum(base.values())
    assert low < estimate < high < 1.0  # the run never scores an item the unpruned model failed


def test_paired_difference_of_two_runs():
    a = constructed(200, 0.7, seed=3)
    b = {k: 0.0 if i % 4 == 0 else v for i, (k, v) in enumerate(a.items())}
    estimate, (low, high), n = paired_difference(a, b, seed=0)
    assert n == 200
    assert estimate == pytest.approx(sum(a[k] - b[k] for k in a) / 200)
    assert 0 < low < estimate < high  # a is never worse item by item: the interval excludes zero
    with pytest.raises(ValueError, match="share no item"):
        paired_difference({"x": 1.0}, {"y": 1.0})


def write_run(directory: Path, task: str, scores: dict[str, float]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": k, "score": v}) for k, v in scores.items()]
    (directory / f"{task}.jsonl").write_text("\n".join(lines) + "\n")
    (directory / f"{task}.json").write_text(json.dumps({"score": sum(scores.values()) / len(scores)}))
    return directory


def test_table_cell_shows_its_interval(tmp_path):
    base = constructed(100, 0.8, seed=4)
    run = {k: v * (i % 2) for i, (k, v) in enumerate(base.items())}
    base_dir = write_run(tmp_path / "base", "gsm8k", base)
    run_dir = write_run(tmp_path / "run" / "eval", "gsm8k", run)
    for directory, seed in ((base_dir, 3), (run_dir, 3), (run_dir.parent / "train", 42)):
        directory.mkdir(exist_ok=True)
        (directory / "manifest.json").write_text(json.dumps({"seeds": {"seed": seed}}))
    baseline = {"gsm8k": sum(base.values()) / 100}
    runs = {"BI 25%": {"gsm8k": sum(run.values()) / 100}}
    columns, rows = retention_rows(baseline, runs, base_dir, {"BI 25%": run_dir})
    low, high = retention_ci(base, run)
    value = runs["BI 25%"]["gsm8k"] / baseline["gsm8k"]
    cell = f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
    text = render(columns, rows, caption(base_dir, [run_dir]))
    assert f"| BI 25% | {cell} | {cell} |" in text[".md"]  # the task and the generative mean (one task)
    # the caption: item counts, and the seeds the runs' manifests recorded
    assert "items per task: GSM8K 100; generation seed 3; fine-tuning seed 42." in text[".md"]
    header, line = text[".csv"].splitlines()[:2]
    assert header.endswith("gsm8k_low,gsm8k_high,generative_mean_low,generative_mean_high")
    assert line.split(",")[-4:-2] == [f"{low:.6f}", f"{high:.6f}"]


def test_unpaired_runs_resample_each_side():
    base = constructed(30, 0.5, seed=5)
    other = {f"other/{i}": v for i, v in enumerate(constructed(30, 0.5, seed=6).values())}
    low, high = retention_ci(base, other)
    assert low < 1.0 < high
    assert bootstrap.LEVEL == 0.95


def test_classification_cells_get_intervals_from_lm_eval_items(tmp_path):
    base = constructed(200, 0.9, seed=7)
    run = {k: v * (i % 4 != 0) for i, (k, v) in enumerate(base.items())}
    dirs = {}
    for name, scores in (("base", base), ("run", run)):
        directory = tmp_path / name / "classification"
        directory.mkdir(parents=True)
        lines = [json.dumps({"id": k, "score": v}) for k, v in scores.items()]
        (directory / "toy_choice.jsonl").write_text("\n".join(lines) + "\n")
        dirs[name] = tmp_path / name
    mean = {name: sum(s.values()) / 200 for name, s in (("base", base), ("run", run))}
    columns, rows = retention_rows(
        {"toy_choice": mean["base"]}, {"run": {"toy_choice": mean["run"]}}, dirs["base"], {"run": dirs["run"]}
    )
    assert rows[0]["ci"]["toy_choice"] == retention_ci(base, run)
    assert (
        rows[0]["ci"]["classification_mean"][0]
        < rows[0]["toy_choice"]
        < rows[0]["ci"]["classification_mean"][1]
    )


def test_figures_draw_the_intervals_of_their_points(tmp_path):
    """Bars (Figures 11, 12) carry each score's interval; the sweep's band (Figure 1) is each layer's paired
    retention interval, read from the sweep's response files."""
    from analysis.figures import bar_errors, sweep_retention_band

    items = constructed(200, 0.6, seed=3)
    run = write_run(tmp_path / "run", "gsm8k", items)
    score = sum(items.values()) / len(items)
    (down, up), (none_down, none_up) = bar_errors({"gsm8k": score, "xsum": 0.3}, run, ["gsm8k", "xsum"])
    low, high = score_ci(items)
    assert (score - down, score + up) == pytest.approx((low, high), abs=1e-12)
    assert down > 0 and up > 0 and (none_down, none_up) == (0.0, 0.0)  # no item file: no bar

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    base, layer_2 = constructed(150, 0.8, seed=1), constructed(150, 0.4, seed=2)
    for name, scores in (("baseline", base), ("layer_002", layer_2), ("layer_003", base)):
        with open(sweep / f"{name}.gsm8k.jsonl", "w") as out:
            for item, value in scores.items():
                out.write(json.dumps({"id": item, "score": value, "response": "r"}) + "\n")
    lows, highs = sweep_retention_band(sweep, "gsm8k", [2, 3])
    assert (lows[0], highs[0]) == retention_ci(base, layer_2) and highs[0] < 1.0
    assert (lows[1], highs[1]) == (1.0, 1.0)  # the same items scored the same: a paired ratio of 1 each draw
    assert sweep_retention_band(sweep, "gsm8k", [2, 4]) is None  # layer 4 has no responses
