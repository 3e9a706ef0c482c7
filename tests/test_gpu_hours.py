"""The A100-hour estimate is read from the graph the executors run: per stage, per script (its stages and their
ancestors) and for the whole grid; the scripts' time limits hold their estimates; the grid makes exactly the
paper's cells."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from infra.paths import REPO_ROOT
from orchestration.gpu_hours import DEFAULT_THROUGHPUT, artifact_views, estimate, load_throughput
from orchestration.study import load_study

PAPER_MODELS = ("llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "mistral-7b-instruct-v0.3", "gemma-2-2b-it")


@pytest.fixture(scope="module")
def views():
    study = load_study("paper", {})
    throughput = load_throughput(DEFAULT_THROUGHPUT)
    found = {}
    for model in PAPER_MODELS:
        model_views, whole = artifact_views(model, study)
        found[model] = (model_views, estimate(whole, throughput))
    return found


@pytest.mark.parametrize("model", PAPER_MODELS)
def test_each_scripts_hours_are_the_sum_over_its_stages_in_the_graph(model, views):
    model_views, result = views[model]
    whole = model_views["paper"]
    assert result.total() == pytest.approx(sum(result.hours[id(s)] for s in whole))
    outputs = [s.output for s in whole]
    assert len(outputs) == len(set(outputs))  # each stage counted once in the whole grid
    for name, stages in model_views.items():
        assert result.total(stages) == pytest.approx(sum(result.hours[id(s)] for s in stages)), name
        assert {s.output for s in stages} <= set(outputs), name
    scripts = sum(result.total(stages) for name, stages in model_views.items() if name != "paper")
    assert (
        result.total() <= scripts
    )  # shared stages are counted once in the whole grid, once per script above


def test_the_command_prints_the_whole_grid_and_what_each_cost_change_saves():
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.gpu_hours", "--model_config", "llama-3.1-8b-instruct", "--compare"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    now = float(
        re.search(r"\*\*now\*\* \(configs/experiments/paper.yaml\) \| \*\*(\d+)\*\*", result.stdout).group(1)
    )
    before = float(
        re.search(r"\| before: \S+, held-out every 50 steps[^|]*\| (\d+) \|", result.stdout).group(1)
    )
    assert now <= before / 2
    whole = float(re.search(r"\*\*whole grid\*\* [^|]*\|[^|]*\| \*\*(\d+)\*\*", result.stdout).group(1))
    assert whole == now
    assert result.stdout.count("(saves ") == 4


def test_no_sbatch_time_limit_is_below_its_scripts_estimate(views):
    def hours(text: str) -> float:
        days, _, clock = text.rpartition("-")
        h, m, s = (int(x) for x in clock.split(":"))
        return 24 * int(days or 0) + h + m / 60

    for model, (model_views, result) in views.items():
        for name, stages in model_views.items():
            header = (REPO_ROOT / "scripts" / f"{name}.sh").read_text()
            limit = hours(re.search(r"#SBATCH --time=(\S+)", header).group(1))
            assert limit >= result.total(stages), (model, name, limit, result.total(stages))


def test_every_cell_the_paper_reports_is_made_by_the_plan_and_no_run_the_paper_lacks(tmp_path):
    """Tables 2, 3 and 5: each row the paper prints for a model is a run its script evaluates (generative
    tasks and classification); the script makes no other run unless an extra is asked for."""
    from analysis.paper_values import load_paper_values
    from orchestration.plan import plan_stages

    study = load_study("paper", {"OUT": str(tmp_path)})
    script_of = {"table_1": "table1_pruning", "table_2": "table2_recovery"}
    for table in load_paper_values()["tables"].values():
        for model in {row.model for row in table.rows}:
            plan = plan_stages(script_of[table.artifact], model, study)
            evaluated = {
                s.output.split("/")[-2]: s for s in plan.graph.stages if s.module == "eval.generative"
            }
            classified = {
                s.output.split("/")[-3] for s in plan.graph.stages if s.module == "eval.classification"
            }
            rows = {row.run for row in table.rows if row.model == model}
            for run in rows:
                assert set(evaluated[run].get("--tasks")) == {"gsm8k", "humaneval", "mbpp", "xsum"}, run
                assert run in classified, run
            if table.name != "table_2":  # Table 2 shows two models' rows of Table 5
                assert set(evaluated) - {"base"} == rows, (table.name, model)
