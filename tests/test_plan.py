"""``PLAN=1 bash scripts/<artifact>.sh <model>``: the stage commands each paper script runs, read from the
experiment grid (configs/experiments/paper.yaml), printed in order without running anything."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from infra.config import load_yaml
from infra.experiments import load_experiments
from infra.model_spec import load_model_spec
from infra.paths import REPO_ROOT

SCRIPTS = sorted(
    p.name
    for p in (REPO_ROOT / "scripts").glob("*.sh")
    if p.name
    not in {
        "lib.sh",
        "lock_env.sh",
        "run_tests.sh",
        "setup_env.sh",
        "toy_env.sh",
        "real_env.sh",
        "toy_study.sh",
    }
)


def plan(script: str, model: str, out: Path, **env: str) -> list[list[str]]:
    """The stage commands of a script as argument lists; "[skip] <path>" lines as ["[skip]", path]."""
    result = subprocess.run(
        ["bash", f"scripts/{script}", model],
        cwd=REPO_ROOT,
        env={**os.environ, "PLAN": "1", "OUT": str(out), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines() if line.strip()]


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def stages(commands: list[list[str]], module: str) -> list[list[str]]:
    return [c for c in commands if c[:3] == ["python", "-m", module]]


@pytest.mark.parametrize("script", SCRIPTS)
def test_plan_runs_nothing(script, tmp_path):
    commands = plan(script, "llama-3.1-8b-instruct", tmp_path / "out")
    assert commands and all(c[0] in {"python", "[skip]"} for c in commands), commands[:3]
    assert commands[-1][:3] == ["python", "-m", "analysis.build_artifacts"]
    assert not (tmp_path / "out").exists()  # nothing was run or written


def test_table_1_fine_tunes_each_method_on_alpaca_for_two_epochs(tmp_path):
    commands = plan("table1_pruning.sh", "llama-3.1-8b-instruct", tmp_path)
    runs = {Path(flag(c, "--output_dir")).parent.name: c for c in stages(commands, "train.sft")}
    assert set(runs) == {f"{m}-25pct-sft-alpaca" for m in ("reverse", "bi", "iterative")}
    for method in ("reverse", "bi"):
        train = runs[f"{method}-25pct-sft-alpaca"]
        assert flag(train, "--num_train_epochs") == "2" and flag(train, "--recipe") == "qlora"
        assert flag(train, "--model").endswith(f"pruned/{method}-25pct/model")
        assert flag(train, "--data").endswith("data/alpaca.prompts.jsonl")  # the dataset's responses
    (prepare,) = stages(commands, "self_generate.prepare")
    assert flag(prepare, "--dataset") == "yahma/alpaca-cleaned"
    # Each pruned model is evaluated on its own (an extra row) and after fine-tuning.
    evals = {Path(flag(c, "--output_dir")).parent.name for c in stages(commands, "eval.generative")}
    assert evals == {"base"} | {
        f"{m}-25pct{s}" for m in ("reverse", "bi", "iterative") for s in ("", "-sft-alpaca")
    }


def test_table_2_budgets_dolci_one_epoch_on_90k_rows_and_alpaca_two(tmp_path):
    commands = plan("table2_recovery.sh", "llama-3.1-8b-instruct", tmp_path)
    prepares = {flag(c, "--name"): c for c in stages(commands, "self_generate.prepare")}
    assert flag(prepares["dolci"], "--dataset") == "allenai/Dolci-Instruct-SFT"
    held_out = load_yaml(REPO_ROOT / "configs" / "train" / "qlora.yaml")["eval_fraction"]
    assert int(flag(prepares["dolci"], "--limit")) * (1 - held_out) == 90_000
    assert flag(prepares["dolci"], "--max_length") == "8000"
    epochs = {}
    for train in stages(commands, "train.sft"):
        data = Path(flag(train, "--data")).name.split(".")[0]
        epochs.setdefault(data, set()).add(flag(train, "--num_train_epochs"))
    assert epochs == {"dolci": {"1"}, "alpaca": {"2"}}
    assert len(stages(commands, "train.sft")) == 3 * 2 * 2  # methods x datasets x {SFT, SGR}
    generated = stages(commands, "self_generate.generate")
    assert sorted(Path(flag(c, "--output")).name for c in generated) == [
        "alpaca.sgr.jsonl",
        "dolci.sgr.jsonl",
    ]


def test_table_6_runs_sgr_fine_tuning_at_every_ratio(tmp_path):
    commands = plan("table6_ratios.sh", "llama-3.1-8b-instruct", tmp_path)
    trained = {Path(flag(c, "--output_dir")).parent.name for c in stages(commands, "train.sft")}
    grid = load_experiments().grid("table_6")
    assert trained == {
        f"{m}-{a}-sgr-dolci"
        for m in ("reverse", "bi", "iterative")
        for a in ("2layers", "10pct", "15pct", "25pct")
    }
    assert grid.amounts == ("2layers", "10pct", "15pct", "25pct")
    for train in stages(commands, "train.sft"):
        assert flag(train, "--data").endswith("data/dolci.sgr.jsonl")


def test_table_4_and_figure_12_compare_recipes(tmp_path):
    table_4 = plan("table4_lora.sh", "llama-3.1-8b-instruct", tmp_path)
    recipes = {
        Path(flag(c, "--output_dir")).parent.name: flag(c, "--recipe") for c in stages(table_4, "train.sft")
    }
    assert recipes == {
        "bi-25pct-sgr-dolci": "qlora",
        "bi-25pct-sgr-dolci-lora": "lora",
        "reverse-25pct-sgr-dolci": "qlora",
        "reverse-25pct-sgr-dolci-lora": "lora",
    }
    figure_12 = plan("figure12_full_ft.sh", "qwen2.5-7b-instruct", tmp_path)
    (prune,) = stages(figure_12, "layer_pruner.prune")
    assert flag(prune, "--method") == "iterative" and flag(prune, "--ratio") == "0.25"
    full = next(c for c in stages(figure_12, "train.sft") if flag(c, "--recipe") == "full")
    assert flag(full, "--data").endswith("dolci.sgr.jsonl")
    evals = stages(figure_12, "eval.generative")
    assert {flag(c, "--tasks") for c in evals} == {"gsm8k"}
    assert any(flag(c, "--model").endswith("sgr-dolci-full/train/model") for c in evals)


GRID_SCRIPTS = {
    "table1_pruning.sh": "table_1",
    "table2_recovery.sh": "table_2",
    "table4_lora.sh": "table_4",
    "table6_ratios.sh": "table_6",
    "figure14_sgr_vs_sft.sh": "figure_14",
    "figure5_perplexity.sh": "figure_5",
    "figure7_arithmetic.sh": "figure_7",
    "figure8_code.sh": "figure_8",
    "figure12_full_ft.sh": "figure_12",
}
NARROWINGS = [
    {},
    {"RECIPES": "lora"},
    {"METHODS": "bi", "AMOUNTS": "10pct"},
    {"RECOVERIES": "none sgr-dolci", "RECIPES": "full"},
]


@pytest.mark.parametrize(
    "narrowing", NARROWINGS, ids=lambda n: " ".join(f"{k}={v}" for k, v in n.items()) or "grid"
)
@pytest.mark.parametrize("script", GRID_SCRIPTS)
def test_the_artifact_reads_the_runs_its_script_makes(script, narrowing, tmp_path):
    """Every run a script evaluates is a run its artifact's build looks for, and no other, under every
    narrowing (RECIPES=lora once made QLoRA-named runs that the lora-narrowed table never found)."""
    commands = plan(script, "llama-3.1-8b-instruct", tmp_path, **narrowing)
    made = {
        str(Path(flag(c, "--output_dir")).parent.relative_to(tmp_path / "llama-3.1-8b-instruct"))
        for c in stages(commands, "eval.generative")
    } - {"base"}
    (build,) = stages(commands, "analysis.build_artifacts")
    narrow = {
        key: flag(build, f"--{key}").split(",")
        for key in ("methods", "amounts", "recoveries", "recipes")
        if f"--{key}" in build
    }
    experiments = load_experiments(flag(build, "--experiments")).narrowed(**narrow)
    grid = experiments.grid(GRID_SCRIPTS[script])
    expected = {
        ("pruned/" if recovery.kind is None else "recovered/") + name
        for name, (_, _, recovery, _) in grid.points(experiments.recipe).items()
    }
    assert made == expected
    if narrowing.get("RECIPES") == "lora":
        trained = {flag(c, "--recipe") for c in stages(commands, "train.sft")}
        assert trained <= {"lora"} and all(r.endswith("-lora") for r in made if r.startswith("recovered/"))


def test_upper_bound_searches_on_gsm8k_and_trains_on_eight_answers(tmp_path):
    commands = plan("upper_bound.sh", "qwen2.5-7b-instruct", tmp_path)
    (prune,) = stages(commands, "layer_pruner.prune")
    assert flag(prune, "--method") == "iterative" and flag(prune, "--tasks") == "gsm8k"
    assert flag(prune, "--ratio") == "0.25"  # 7 of Qwen's 28 layers
    (prepare,) = stages(commands, "self_generate.prepare")
    assert flag(prepare, "--dataset") == "openai/gsm8k" and flag(prepare, "--hub_config") == "main"
    (generate,) = stages(commands, "self_generate.generate")
    assert flag(generate, "--n") == "8"
    trains = stages(commands, "train.sft")
    assert sorted(flag(c, "--recipe") for c in trains) == ["full", "qlora"]
    assert {flag(c, "--num_train_epochs") for c in trains} == {"2"}
    assert {flag(c, "--tasks") for c in stages(commands, "eval.generative")} == {"gsm8k"}


@pytest.mark.parametrize("model", ["llama-3.1-8b-instruct", "gemma-2-2b-it", "qwen2.5-7b-instruct"])
def test_sweep_covers_layers_one_to_l_minus_one(model, tmp_path):
    commands = plan("figures1-4_sweep.sh", model, tmp_path)
    (sweep,) = stages(commands, "layer_pruner.sweep")
    layers = [int(x) for x in flag(sweep, "--layers").split(",")]
    num_layers = load_model_spec(model).num_layers
    assert layers == list(range(1, num_layers))
    assert len(layers) == {"llama-3.1-8b-instruct": 31, "gemma-2-2b-it": 25, "qwen2.5-7b-instruct": 27}[model]
    task = plan("figures1-4_sweep.sh", model, tmp_path, SLURM_ARRAY_TASK_ID="7")
    assert [flag(c, "--layers") for c in stages(task, "layer_pruner.sweep")] == ["7"]
    assert len(task) == 1  # an array task scores its layer and stops


def test_plan_marks_complete_stages_as_skipped(tmp_path):
    results = tmp_path / "llama-3.1-8b-instruct"
    (results / "pruned" / "bi-25pct" / "model").mkdir(parents=True)
    (results / "pruned" / "bi-25pct" / "model" / "manifest.json").write_text("{}")
    (results / "base" / "eval" / "classification").mkdir(parents=True)
    for task in ("gsm8k", "humaneval", "mbpp"):
        (results / "base" / "eval" / f"{task}.json").write_text("{}")
    commands = plan("table1_pruning.sh", "llama-3.1-8b-instruct", tmp_path)
    assert ["[skip]", str(results / "pruned" / "bi-25pct" / "model")] in commands
    # Only what is missing of the base evaluation is planned: xsum and the classification tasks.
    base = [c for c in stages(commands, "eval.generative") if flag(c, "--output_dir").endswith("base/eval")]
    assert [flag(c, "--tasks") for c in base] == ["xsum"]
    assert not [c for c in stages(commands, "layer_pruner.prune") if flag(c, "--method") == "bi"]


def test_experiment_grid_errors_name_the_key(tmp_path):
    bad = tmp_path / "grid.yaml"
    bad.write_text(
        "datasets: {alpaca: {source: yahma/alpaca-cleaned, epochs: 2}}\n"
        "artifacts: {table_1: {methods: [bi], amounts: [25pct], recoveries: [sft-dolci]}}\n"
    )
    result = subprocess.run(
        ["bash", "scripts/table1_pruning.sh", "llama-3.1-8b-instruct"],
        cwd=REPO_ROOT,
        env={**os.environ, "PLAN": "1", "OUT": str(tmp_path), "EXPERIMENTS": str(bad)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert (
        f"{bad}: key 'artifacts.table_1.recoveries': dataset 'dolci' is not under 'datasets'" in result.stderr
    )


def test_plan_shows_the_settings_the_original_ran_for_llama(tmp_path):
    """docs/fidelity.md: BI and the search in the model's dtype (bf16), full fine-tuning at a global batch of
    8 whatever the processes, self-generation within 8,192 tokens of prompt + answer, Alpaca as run."""
    commands = plan("figure12_full_ft.sh", "llama-3.1-8b-instruct", tmp_path)
    (prune,) = stages(commands, "layer_pruner.prune")
    assert flag(prune, "--dtype") == load_model_spec("llama-3.1-8b-instruct").dtype == "bfloat16"
    full = next(c for c in stages(commands, "train.sft") if flag(c, "--recipe") == "full")
    assert flag(full, "--global_batch_size") == "8"
    qlora = next(c for c in stages(commands, "train.sft") if flag(c, "--recipe") == "qlora")
    assert "--global_batch_size" not in qlora
    (generate,) = stages(commands, "self_generate.generate")
    assert flag(generate, "--max_context") == "8192"
    sweep = plan("figures1-4_sweep.sh", "llama-3.1-8b-instruct", tmp_path)
    for module in ("layer_pruner.sweep", "analysis.bi_profile", "analysis.arithmetic_probe"):
        assert all(flag(c, "--dtype") == "bfloat16" for c in stages(sweep, module)), module
    as_run = plan("table1_pruning.sh", "llama-3.1-8b-instruct", tmp_path, STEPS="as_run")
    trains = stages(as_run, "train.sft")
    assert trains and all(flag(c, "--max_steps") == "5823" for c in trains)
    assert all(
        "--max_steps" not in c
        for c in stages(plan("table1_pruning.sh", "llama-3.1-8b-instruct", tmp_path), "train.sft")
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_runs_its_plan(script):
    """An experiment script is its #SBATCH header and one call of the plan named after it, so PLAN=1, a run
    and the SLURM submitter (orchestration.slurm_jobs.script_stages) read the same stages."""
    from orchestration.plan import PLANS

    lines = [line for line in (REPO_ROOT / "scripts" / script).read_text().splitlines() if line.strip()]
    name = script.removesuffix(".sh")
    assert lines[-1] == f'exec python -m orchestration.plan {name} "${{1:-${{MODEL_CONFIG:-}}}}"'
    assert name in PLANS
    assert not [line for line in lines if line.startswith(("source", "python", "run_", "stage"))]


def test_every_script_plan_has_its_script():
    from orchestration.plan import PLANS

    shared = {"base_scores", "base_greedy", "base_responses", "base_probe", "sweep_layers", "artifacts"}
    assert {f"{name}.sh" for name in PLANS if name not in shared} == set(SCRIPTS)


def test_the_plan_prints_each_stages_own_defaults(tmp_path):
    """A default is written once: unset, every setting the plan passes is the stage's own dataclass default or
    the task registry's, so changing either changes the scripts."""
    from analysis.arithmetic_probe import ProbeArgs
    from eval.classification import ClassificationArgs
    from eval.generative import GenerativeArgs
    from infra.task_registry import registry
    from layer_pruner.prune import PruneArgs
    from self_generate.generate import GenerateArgs

    commands = plan("table2_recovery.sh", "llama-3.1-8b-instruct", tmp_path)
    commands += plan("figure7_arithmetic.sh", "llama-3.1-8b-instruct", tmp_path)
    (prune, *_) = stages(commands, "layer_pruner.prune")
    assert flag(prune, "--calibration") == PruneArgs.__dataclass_fields__["calibration"].default
    assert flag(prune, "--n_calibration") == str(PruneArgs.__dataclass_fields__["n_calibration"].default)
    assert flag(prune, "--tasks") == ",".join(registry().search_tasks)
    assert flag(prune, "--n_items") == str(registry().items["search"])
    (evaluate, *_) = stages(commands, "eval.generative")
    assert flag(evaluate, "--tasks") == ",".join(registry().eval_tasks)
    assert flag(evaluate, "--max_new_tokens") == str(
        GenerativeArgs.__dataclass_fields__["max_new_tokens"].default
    )
    (classify, *_) = stages(commands, "eval.classification")
    assert flag(classify, "--limit") == str(ClassificationArgs.__dataclass_fields__["limit"].default)
    (generate, *_) = stages(commands, "self_generate.generate")
    assert flag(generate, "--max_context") == str(GenerateArgs.__dataclass_fields__["max_context"].default)
    (probe, *_) = stages(commands, "analysis.arithmetic_probe")
    assert flag(probe, "--n_items") == str(ProbeArgs.__dataclass_fields__["n_items"].default)


@pytest.mark.parametrize(
    "grid_file", sorted((REPO_ROOT / "configs" / "experiments").glob("*.yaml")), ids=lambda p: p.stem
)
def test_run_names_are_parsed_back_as_written(grid_file):
    """run_name writes a run's name and parse_run_name reads it, in one module; every run of every grid
    round-trips (method, amount, recovery, dataset, and the recipe only when it is not the default)."""
    from infra.experiments import parse_run_name

    if "artifacts" not in (load_yaml(grid_file) or {}):
        pytest.skip(f"{grid_file.name} is not an experiment grid")
    experiments = load_experiments(grid_file)
    for grid in experiments.artifacts.values():
        for name, (method, amount, recovery, recipe) in grid.points(experiments.recipe).items():
            run = parse_run_name(name)
            assert (run.method, run.amount, run.recovery, run.data) == (
                method,
                amount,
                recovery.kind,
                recovery.dataset,
            )
            assert run.recipe == (None if recovery.kind is None or recipe == experiments.recipe else recipe)


def test_a_plan_stops_at_a_failed_stage_with_its_exit_status(tmp_path):
    """Run mode: stages in order, complete ones reported, the first failure ends the plan with its status and
    names the stage; nothing after it runs."""
    from orchestration.plan import Plan, Stage, run

    plan_ = Plan("llama-3.1-8b-instruct", {**os.environ, "OUT": str(tmp_path)})
    marker = tmp_path / "after"
    plan_.pending("done/output", True)
    plan_.add(Stage(["python", "-c", "import sys; sys.exit(3)"], ["first"]))
    plan_.add(Stage(["python", "-c", f"open({str(marker)!r}, 'w')"], ["second"]))
    assert run(plan_) == 3 and not marker.exists()
