"""The findings report (analysis/findings.py) on a constructed results tree whose effects are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from analysis.findings import FINDINGS, findings, report
from analysis.findings import main as findings_main
from infra.experiments import load_experiments

GRID = Path(__file__).resolve().parents[1] / "configs" / "experiments" / "toy_full.yaml"
N = 200


WORDS = "the river runs past a stone wall near the old mill where children play each day".split()


def response(i: int, looping: bool) -> str:
    """A varied answer, or (looping) one phrase repeated, the degeneration a pruned model shows."""
    if looping:
        return " ".join(["the answer is"] * 8)
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(12))


def write_items(
    directory: Path, task: str, hits: np.ndarray, classification: bool = False, looping: bool = False
) -> None:
    target = directory / "classification" if classification else directory
    target.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"id": f"{task}/{i}", "score": float(h), "response": response(i, looping)})
        for i, h in enumerate(hits)
    ]
    (target / f"{task}.jsonl").write_text("\n".join(lines) + "\n")
    if classification:
        (target / "classification.json").write_text(json.dumps({"scores": {task: float(hits.mean())}}))
    else:
        (directory / f"{task}.json").write_text(json.dumps({"score": float(hits.mean())}))


def write_run(
    directory: Path, generative_keep: float, classification_keep: float, rng, looping: bool = False
) -> None:
    """Items the unpruned model solves are kept with the given probabilities (it never gains an item)."""
    base = np.arange(N) % 5 != 0  # the unpruned model solves 80%
    for task in ("toy_arithmetic", "toy_brackets"):
        write_items(directory, task, base & (rng.random(N) < generative_keep), looping=looping)
    write_items(directory, "hellaswag", base & (rng.random(N) < classification_keep), classification=True)


def constructed_tree(root: Path, sgr_keep: float = 0.85, sft_keep: float = 0.6) -> Path:
    rng = np.random.default_rng(0)
    write_run(root / "base" / "eval", 1.0, 1.0, rng)
    for method in ("reverse", "bi", "iterative"):
        write_run(root / "pruned" / f"{method}-25pct" / "eval", 0.4, 0.95, rng, looping=True)
        write_run(root / "recovered" / f"{method}-25pct-sft-toy" / "eval", sft_keep, 0.95, rng)
        write_run(root / "recovered" / f"{method}-25pct-sgr-toy" / "eval", sgr_keep, 0.95, rng)
        hits = (np.arange(N) % 3 == 0) & (rng.random(N) < 0.5)
        probe = root / "probe" / f"{method}-25pct" / "arithmetic_probe.json"
        probe.parent.mkdir(parents=True)
        probe.write_text(
            json.dumps({"baseline": {"accuracy": hits.mean(), "hits": hits.astype(int).tolist()}})
        )
    base_hits = np.arange(N) % 10 != 0
    probe = root / "probe" / "base" / "arithmetic_probe.json"
    probe.parent.mkdir(parents=True)
    # Ablating layer 3 loses every item; the other layers lose a random 5%.
    layers = [
        {"layer": layer, "hits": (base_hits & ((layer != 3) & (rng.random(N) > 0.05))).astype(int).tolist()}
        for layer in range(6)
    ]
    probe.write_text(
        json.dumps(
            {
                "baseline": {"accuracy": base_hits.mean(), "hits": base_hits.astype(int).tolist()},
                "layers": layers,
            }
        )
    )
    return root


def test_every_finding_holds_where_the_effects_were_built_in(tmp_path):
    items = findings(constructed_tree(tmp_path / "results"), load_experiments(GRID))
    assert [item["finding"] for item in items] == list(FINDINGS)
    assert [item["holds"] for item in items] == [True] * 6
    one, two, three, four, five, six = items
    # Built in: classification keeps 95% of the items, generation 40%; SGR keeps 85%, SFT 60%.
    assert abs(one["estimate"] - (0.95 - 0.40)) < 0.08 and one["ci"][0] > 0.4
    assert abs(two["estimate"] - (0.85 - 0.60)) < 0.08 and two["ci"][0] > 0.1
    assert abs(three["estimate"] - (0.85 - 0.40)) < 0.08
    assert four["ci"][0] > 0.5 and four["n_comparisons"] == 3
    # rep-4 of "the answer is" x 8 is 1 - 3/21 distinct 4-grams; the varied answers have none repeated.
    assert abs(five["estimate"] - 100 * (1 - 3 / 21)) < 1e-6 and five["n_comparisons"] == 6
    # Layer 3 is chosen on the even items; on the odd ones (all solved) it loses every item.
    assert six["layer"] == 3 and abs(six["estimate"] - 1.0) < 1e-9 and six["ci"][0] > 0.9
    for item in items[:4]:
        low, high = item["ci"]
        assert low < item["estimate"] < high


def test_a_finding_that_is_not_there_is_reported_as_such(tmp_path, capsys):
    results = constructed_tree(tmp_path / "results", sgr_keep=0.6, sft_keep=0.6)
    assert findings_main(["--results", str(results), "--experiments", str(GRID)]) == 0
    written = json.loads((results / "artifacts" / "findings.json").read_text())
    assert written[1]["holds"] is False and written[1]["ci"][0] < 0 < written[1]["ci"][1]
    assert set(written[0]) == {"finding", "holds", "estimate", "ci", "n_comparisons", "evidence"}
    out = capsys.readouterr().out
    assert "(2) SGR recovers more than fine-tuning on the dataset's own responses: DOES NOT HOLD" in out


def test_missing_runs_are_not_tested(tmp_path):
    (tmp_path / "base" / "eval").mkdir(parents=True)
    items = findings(tmp_path, load_experiments(GRID))
    assert [item["holds"] for item in items] == [None] * 6
    assert "NOT TESTED" in report(items)
