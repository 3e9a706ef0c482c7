"""The paper's numbers as data (configs/paper_values.yaml): the transcription checked against itself, and our
tables compared with it cell by cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from analysis.paper_values import PAPER_VALUES, load_paper_values, write_reproduction
from infra.experiments import load_experiments, parse_run_name
from infra.paths import REPO_ROOT

PAPER_MODELS = ("gemma-2-2b-it", "llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "mistral-7b-instruct-v0.3")


def transcription_errors(path: Path) -> list[str]:
    """Every Mean recomputed from its cells (within the rounding of printed three-decimal cells) and every
    arrow recomputed from its SGR row and the matching open-source row."""
    load_paper_values.cache_clear()
    values = load_paper_values(path)
    errors = []
    for table in values["tables"].values():
        by_label = {(row.model, row.row.rstrip("*").strip()): row for row in table.rows}
        for row in table.rows:
            for group, size in (("classification", 7), ("generative", 4)):
                tasks = values["columns"][:7] if group == "classification" else values["columns"][8:12]
                mean = sum(row.cells[t] for t in tasks) / size
                if abs(mean - row.cells[f"{group}_mean"]) > 0.0011:
                    errors.append(
                        f"{table.name} {row.model} {row.row}: {group} mean {row.cells[f'{group}_mean']} != {mean:.4f}"
                    )
            if row.row.startswith("SGR"):
                method, data = row.row[len("SGR (") :].rstrip(")").split(" + S.")
                sft = by_label[(row.model, f"{method} + {data}")]
                expected = tuple(
                    "up" if row.cells[f"{g}_mean"] > sft.cells[f"{g}_mean"] else "down"
                    for g in ("classification", "generative")
                )
                if row.arrows != expected:
                    errors.append(f"{table.name} {row.model} {row.row}: arrows {row.arrows} != {expected}")
    return errors


def test_the_transcription_holds_every_cell_of_tables_2_3_and_5_and_is_consistent():
    values = load_paper_values()
    tables = values["tables"]
    assert {m: sum(r.model == m for r in tables["table_5"].rows) for m in PAPER_MODELS} == {
        "gemma-2-2b-it": 8, "llama-3.1-8b-instruct": 10, "qwen2.5-7b-instruct": 10, "mistral-7b-instruct-v0.3": 10,
    }  # fmt: skip
    assert {r.model for r in tables["table_3"].rows} == set(PAPER_MODELS) and len(tables["table_3"].rows) == 8
    assert {r.model for r in tables["table_2"].rows} == {"llama-3.1-8b-instruct", "qwen2.5-7b-instruct"}
    assert all(len(row.cells) == 13 for table in tables.values() for row in table.rows)
    assert transcription_errors(PAPER_VALUES) == []
    # Table 2's rows are Table 5's for Llama and Qwen; Table 3's are Table 5's Alpaca rows.
    table_5 = {(r.model, r.row): r.cells for r in tables["table_5"].rows}
    assert all(table_5[(r.model, r.row)] == r.cells for r in tables["table_2"].rows)
    for row in tables["table_3"].rows:
        label = row.row.rstrip("*").strip() + " + Alpaca" + ("*" if row.row.endswith("*") else "")
        assert table_5[(row.model, label)] == row.cells, row
    # Every row is a run of our grid for its model (quoted rows too: we run them).
    for table in tables.values():
        for row in table.rows:
            experiments = load_experiments().resolved(row.model)
            names = experiments.grid(table.artifact).run_names(experiments.recipe)
            assert row.run in names and parse_run_name(row.run) is not None, (table.name, row)


@pytest.mark.parametrize(
    "edit",
    [
        ("tables", "table_5", "models", "llama-3.1-8b-instruct", 3, "generative", 1, 0.544),  # a cell
        ("tables", "table_3", "models", "gemma-2-2b-it", 0, "classification_mean", None, 0.849),  # a mean
        ("tables", "table_5", "models", "qwen2.5-7b-instruct", 6, "arrows", 0, "up"),  # an arrow
    ],
)
def test_a_mistyped_cell_fails_the_check(edit, tmp_path):
    data = yaml.safe_load(PAPER_VALUES.read_text())
    *keys, index, field, position, value = edit
    target = data
    for key in keys:
        target = target[key]
    row = target[index]
    if position is None:
        row[field] = value
    else:
        row[field][position] = value
    path = tmp_path / "paper_values.yaml"
    path.write_text(yaml.safe_dump(data))
    assert transcription_errors(path), edit
    load_paper_values.cache_clear()


def write_results(root: Path, runs: dict[str, dict[str, float]]) -> Path:
    """A results tree whose unpruned model scores 1000 of 2000 items of every task right, and whose runs score a
    given share of that (a retention above 1 too): each retention is exactly that share."""
    tasks = load_paper_values()["columns"]

    def write(directory: Path, shares: dict[str, float]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        classification = {}
        for task in tasks:
            if task.endswith("_mean"):
                continue
            share = shares.get(task, 1.0)
            items = [{"id": f"{task}/{i}", "score": float(i < round(1000 * share))} for i in range(2000)]
            lm_eval = task not in ("gsm8k", "humaneval", "mbpp", "xsum")
            path = directory / ("classification" if lm_eval else "") / f"{task}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(item) + "\n" for item in items))
            if lm_eval:
                classification[task] = sum(i["score"] for i in items) / 2000
            else:
                (directory / f"{task}.json").write_text(
                    json.dumps({"task": task, "score": sum(i["score"] for i in items) / 2000})
                )
        (directory / "classification" / "classification.json").write_text(
            json.dumps({"scores": classification})
        )

    write(root / "base" / "eval", {})
    for run, shares in runs.items():
        kind = "recovered" if parse_run_name(run).recovery else "pruned"
        write(root / kind / run / "eval", shares)
    return root


def test_cells_equal_to_the_papers_read_as_reproduced_and_others_show_their_difference(tmp_path):
    values = load_paper_values()
    llama = [r for r in values["tables"]["table_5"].rows if r.model == "llama-3.1-8b-instruct"]
    sgr = next(r for r in llama if r.row == "SGR (BI + S.Dolci)")
    sft = next(r for r in llama if r.row == "BI + Dolci")
    off = {
        **sft.cells,
        "gsm8k": sft.cells["gsm8k"] + 0.09,
    }  # 9 points above the paper's (90 more of 2000 right)
    results = write_results(tmp_path / "llama-3.1-8b-instruct", {sgr.run: sgr.cells, sft.run: off})
    experiments = load_experiments().resolved("llama-3.1-8b-instruct")
    write_reproduction(results, tmp_path / "artifacts" / "reproduction", experiments)
    table = (tmp_path / "artifacts" / "table_5_vs_paper.md").read_text()
    sgr_line = next(line for line in table.splitlines() if line.startswith("| SGR (BI + S.Dolci) |"))
    assert (
        "75.8 / 75.8 [" in sgr_line and "103.3 / 103.3 [" in sgr_line and "/ +0.0 ✓" in sgr_line
    )  # GSM8K: the paper's 0.758, equal
    assert sgr_line.count("✓") == 13
    sft_line = next(line for line in table.splitlines() if line.startswith("| BI + Dolci |"))
    assert "46.9 / 55.9 [" in sft_line and "/ +9.0 |" in sft_line
    report = (tmp_path / "artifacts" / "reproduction.md").read_text()
    # Table 5 for Llama: 10 rows x 13 cells, the quoted row not counted; two rows run.
    assert "| Table 5 (Appendix A.8) | `table_2` | 117 | 91 |" in report
    assert "- table_5, BI + Dolci, gsm8k: +9.0 (paper 46.9, ours 55.9)" in report


def test_a_model_the_paper_reports_nothing_for_says_so(tmp_path):
    experiments = load_experiments(REPO_ROOT / "configs" / "experiments" / "toy.yaml").resolved("toy-llama")
    (tmp_path / "toy-llama").mkdir()
    (path,) = write_reproduction(tmp_path / "toy-llama", tmp_path / "artifacts" / "reproduction", experiments)
    assert "The paper reports no numbers for toy-llama: nothing to compare." in path.read_text()
    assert not list((tmp_path / "artifacts").glob("*_vs_paper.md"))
