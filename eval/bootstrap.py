"""Bootstrap 95% intervals over items for scores and retention, and paired differences of two runs.

An evaluation's ``<task>.jsonl`` holds one record per item with its ``id`` and ``score``. Resampling items
with replacement (percentile intervals, ``RESAMPLES`` draws from ``numpy.random.default_rng(seed)``):

- score: the mean of the resampled items;
- retention: mean(run) / mean(unpruned), the same resampled item ids for both when the two runs scored the
  same items (paired), else each run resampled on its own;
- a mean over tasks (the tables' generative mean): each task resampled, the mean of the task retentions;
- a paired difference (SGR vs SFT, pruned vs recovered): mean(a) - mean(b) over the items both scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infra.files import load_jsonl

RESAMPLES = 2000
LEVEL = 0.95


def item_scores(results_dir: str | Path, task: str) -> dict[str, float] | None:
    """``{item id: score}`` of one task's item file (``<task>.jsonl``, or ``classification/<task>.jsonl``
    for the lm-eval tasks), or None when the run has none."""
    for path in (Path(results_dir) / f"{task}.jsonl", Path(results_dir) / "classification" / f"{task}.jsonl"):
        if path.is_file() and path.stat().st_size:
            return {str(r["id"]): float(r["score"]) for r in load_jsonl(path) if "score" in r}
    return None


def percentile_interval(draws: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def _draw_means(values: np.ndarray, rng: np.random.Generator, index: np.ndarray | None = None) -> np.ndarray:
    if index is None:
        index = rng.integers(0, len(values), size=(RESAMPLES, len(values)))
    return values[index].mean(axis=1)


def score_ci(scores: dict[str, float], seed: int = 0) -> tuple[float, float]:
    values = np.array(list(scores.values()), dtype=float)
    return percentile_interval(_draw_means(values, np.random.default_rng(seed)))


def paired_ratio(
    base: dict[str, float],
    plus: dict[str, float],
    minus: dict[str, float] | None,
    rng: np.random.Generator,
) -> tuple[float, np.ndarray]:
    """(mean(plus) - mean(minus)) / mean(base) over the items all of them scored (``minus`` None:
    mean(plus) / mean(base)): the estimate and its bootstrap draws, the items resampled jointly."""
    ids = sorted(set(base) & set(plus) & (set(minus) if minus is not None else set(plus)))
    if not ids:
        raise ValueError("the runs share no item")
    columns = [np.array([d[i] for i in ids]) for d in (base, plus, minus or plus)]
    index = rng.integers(0, len(ids), size=(RESAMPLES, len(ids)))

    def statistic(rows: np.ndarray) -> np.ndarray:
        b, p, m = (c[rows].mean(axis=-1) for c in columns)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, (p - m if minus is not None else p) / b, np.nan)

    return float(statistic(np.arange(len(ids)))), statistic(index)


def retention_draws(base: dict[str, float], run: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Bootstrap draws of mean(run) / mean(base); paired over the item ids when both scored the same items."""
    if set(base) == set(run):
        return paired_ratio(base, run, None, rng)[1]
    denominator = _draw_means(np.array(list(base.values())), rng)
    numerator = _draw_means(np.array(list(run.values())), rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def retention_ci(base: dict[str, float], run: dict[str, float], seed: int = 0) -> tuple[float, float]:
    return percentile_interval(retention_draws(base, run, np.random.default_rng(seed)))


def mean_retention_ci(
    pairs: list[tuple[dict[str, float], dict[str, float]]], seed: int = 0
) -> tuple[float, float]:
    """The interval of the mean over tasks of the task retentions (each task resampled on its own)."""
    rng = np.random.default_rng(seed)
    draws = np.stack([retention_draws(base, run, rng) for base, run in pairs])
    return percentile_interval(draws.mean(axis=0))


def paired_difference(
    a: dict[str, float], b: dict[str, float], seed: int = 0
) -> tuple[float, tuple[float, float], int]:
    """mean(a) - mean(b) over the items both scored, its interval, and the number of those items."""
    ids = sorted(set(a) & set(b))
    if not ids:
        raise ValueError("the two runs share no item")
    diff = np.array([a[i] - b[i] for i in ids])
    return float(diff.mean()), percentile_interval(_draw_means(diff, np.random.default_rng(seed))), len(ids)
