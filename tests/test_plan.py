"""``PLAN=1 bash scripts/<artifact>.sh <model>``: the stage commands each paper script runs, read from the
experiment grid (configs/experiments/paper.yaml) resolved for the model, printed in order without running
anything; ``scripts/paper.sh`` prints the whole graph, each stage once."""

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
from orchestration.plan import ARTIFACT_PLANS, PLANS, plan_stages
from orchestration.study import load_study

PAPER_MODELS = ("llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "mistral-7b-instruct-v0.3", "gemma-2-2b-it")
SCRIPTS = sorted(f"{name}.sh" for name in PLANS)
# A model each script's artifact has runs for (Figures 12 and 14 and the upper bound are Qwen's in the paper).
MODEL_OF = {"figure12_full_ft.sh": "qwen2.5-7b-instruct", "figure14_sgr_vs_sft.sh": "qwen2.5-7b-instruct",
            "upper_bound.sh": "qwen2.5-7b-instruct", "released_pair.sh": "minitron-4b-depth"}  # fmt: skip


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
    return [c for c in commands if module in c and c[c.index("-m") + 1] == module]


def study(**env: str):
    return load_study("paper", {**{k: v for k, v in os.environ.items() if k != "STUDY"}, **env})


@pytest.mark.parametrize("script", SCRIPTS)
def test_plan_runs_nothing(script, tmp_path):
    commands = plan(script, MODEL_OF.get(script, "llama-3.1-8b-instruct"), tmp_path / "out")
    assert commands and all(c[0] in {"python", "accelerate", "[skip]"} for c in commands), commands[:3]
    assert commands[-1][:3] == ["python", "-m", "analysis.build_artifacts"]
    assert not (tmp_path / "out").exists()  # nothing was run or written


def test_a_script_without_runs_for_a_model_says_which_models_it_is_for(tmp_path):
    result = subprocess.run(
        ["bash", "scripts/figure12_full_ft.sh", "llama-3.1-8b-instruct"],
        cwd=REPO_ROOT,
        env={**os.environ, "PLAN": "1", "OUT": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert (
        "figure_12 has no runs for llama-3.1-8b-instruct (the paper shows it for qwen2.5-7b-instruct)"
        in result.stderr
    )


@pytest.mark.parametrize("model", PAPER_MODELS)
def test_the_whole_graph_plans_each_output_once_and_holds_every_scripts_stages(model, tmp_path):
    """scripts/paper.sh: every stage of every artifact script once; each script's plan is its stages and their
    ancestors in that graph, with the same commands."""
    whole = plan_stages("paper", model, study(OUT=str(tmp_path)))
    outputs = whole.graph.outputs()
    assert len(outputs) == len(set(outputs))
    by_output = {stage.output: stage for stage in whole.graph.stages}
    for name in ARTIFACT_PLANS:
        if name == "released_pair":  # a pair's own plan (configs/released), not a model's artifact
            continue
        try:
            own = plan_stages(name, model, study(OUT=str(tmp_path)))
        except Exception as error:  # an artifact the paper does not show for this model
            assert "has no runs for" in str(error) or "no upper bound for" in str(error), error
            continue
        *work, build = own.graph.stages
        assert build.module == "analysis.build_artifacts"
        assert all(stage.output in by_output for stage in work), name
        for stage in work:  # the same command; an evaluation may cover more tasks (another script's too)
            other = by_output[stage.output]
            if stage.module == "eval.generative":
                assert set(stage.get("--tasks")) <= set(other.get("--tasks")), name
                assert stage.command_without("--tasks") == other.command_without("--tasks"), name
            else:
                assert stage.line() == other.line(), name
        # The script's stages are exactly the ancestors, in the whole graph, of what its build reads.
        ancestors = {
            s.output for s in work for s in [by_output[s.output], *whole.graph.ancestors(by_output[s.output])]
        }
        assert ancestors == {s.output for s in work}, name


def test_table_1_is_reverse_and_bi_after_alpaca_sft_and_its_extras_are_opt_in(tmp_path):
    commands = plan("table1_pruning.sh", "llama-3.1-8b-instruct", tmp_path)
    runs = {Path(flag(c, "--output_dir")).parent.name: c for c in stages(commands, "train.sft")}
    assert set(runs) == {"reverse-25pct-sft-alpaca", "bi-25pct-sft-alpaca"}
    for method in ("reverse", "bi"):
        train = runs[f"{method}-25pct-sft-alpaca"]
        assert flag(train, "--num_train_epochs") == "2" and flag(train, "--recipe") == "qlora"
        assert flag(train, "--model").endswith(f"pruned/{method}-25pct/model")
        assert flag(train, "--data").endswith("data/alpaca.prompts.jsonl")  # the dataset's responses
    (prepare,) = stages(commands, "self_generate.prepare")
    assert flag(prepare, "--dataset") == "yahma/alpaca-cleaned"
    evals = {Path(flag(c, "--output_dir")).parent.name for c in stages(commands, "eval.generative")}
    assert evals == {"base", "reverse-25pct-sft-alpaca", "bi-25pct-sft-alpaca"}
    extra = plan(
        "table1_pruning.sh", "llama-3.1-8b-instruct", tmp_path, EXTRAS="unrecovered,iterative_alpaca"
    )
    evals = {Path(flag(c, "--output_dir")).parent.name for c in stages(extra, "eval.generative")}
    assert {"reverse-25pct", "bi-25pct", "iterative-25pct", "iterative-25pct-sft-alpaca"} < evals


@pytest.mark.parametrize("model, iterative", [("llama-3.1-8b-instruct", True), ("gemma-2-2b-it", False)])
def test_table_2_is_the_papers_rows_dolci_one_epoch_on_90k_and_alpaca_two(model, iterative, tmp_path):
    commands = plan("table2_recovery.sh", model, tmp_path)
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
    trained = {Path(flag(c, "--output_dir")).parent.name for c in stages(commands, "train.sft")}
    expected = {
        f"{m}-25pct-{r}"
        for m in ("reverse", "bi")
        for r in ("sft-alpaca", "sgr-alpaca", "sft-dolci", "sgr-dolci")
    }
    if iterative:  # Table 5: iterative with Dolci, not for Gemma
        expected |= {"iterative-25pct-sft-dolci", "iterative-25pct-sgr-dolci"}
    assert trained == expected
    generated = stages(commands, "self_generate.generate")
    assert sorted(Path(flag(c, "--output")).name for c in generated) == [
        "alpaca.sgr.jsonl",
        "dolci.sgr.jsonl",
    ]


def test_every_iterative_amount_is_a_prefix_of_one_search(tmp_path):
    """One greedy search per model and task set, 8 steps for Llama's 25%; 2 layers, 10% and 15% are its first
    2, 3 and 5 layers (layer_pruner.prune --search_dir)."""
    commands = plan("table6_ratios.sh", "llama-3.1-8b-instruct", tmp_path)
    (search,) = stages(commands, "layer_pruner.search")
    assert flag(search, "--steps") == "8" and flag(search, "--tasks") == "gsm8k,humaneval,xsum"
    prunes = [c for c in stages(commands, "layer_pruner.prune") if flag(c, "--method") == "iterative"]
    assert len(prunes) == 4 and {flag(c, "--search_dir") for c in prunes} == {flag(search, "--output_dir")}
    # The upper bound searches on GSM8K alone: its own search.
    upper = plan("upper_bound.sh", "qwen2.5-7b-instruct", tmp_path)
    (ub_search,) = stages(upper, "layer_pruner.search")
    assert flag(ub_search, "--tasks") == "gsm8k" and flag(ub_search, "--steps") == "7"
    # SHARED_SEARCH=false: each amount runs its own search, as planned before.
    apart = plan("table6_ratios.sh", "llama-3.1-8b-instruct", tmp_path, SHARED_SEARCH="false")
    assert not stages(apart, "layer_pruner.search")
    assert not any("--search_dir" in c for c in stages(apart, "layer_pruner.prune"))


def test_held_out_loss_once_per_epoch_on_a_capped_set_and_figure_5_keeps_its_curve(tmp_path):
    commands = plan("table2_recovery.sh", "llama-3.1-8b-instruct", tmp_path)
    trains = {Path(flag(c, "--output_dir")).parent.name: c for c in stages(commands, "train.sft")}
    curve = {"bi-25pct-sft-dolci", "bi-25pct-sgr-dolci"}  # Figure 5's runs
    for name, train in trains.items():
        assert flag(train, "--eval_max_examples") == "1000", name
        if name in curve:
            assert (flag(train, "--eval_strategy"), flag(train, "--eval_steps")) == ("steps", "250"), name
            assert flag(train, "--eval_at_start") == "true"
        else:
            assert (flag(train, "--eval_strategy"), flag(train, "--eval_at_start")) == ("epoch", "false"), (
                name
            )
    before = plan("table2_recovery.sh", "llama-3.1-8b-instruct", tmp_path, HELD_OUT="steps")
    for train in stages(before, "train.sft"):
        assert (flag(train, "--eval_strategy"), flag(train, "--eval_steps")) == ("steps", "50")
        assert "--eval_max_examples" not in train


def test_table_4_compares_the_alpaca_qlora_rows_and_figure_12_full_on_eight_gpus(tmp_path):
    table_4 = plan("table4_lora.sh", "llama-3.1-8b-instruct", tmp_path)
    recipes = {
        Path(flag(c, "--output_dir")).parent.name: flag(c, "--recipe") for c in stages(table_4, "train.sft")
    }
    assert recipes == {"bi-25pct-sft-alpaca": "qlora", "reverse-25pct-sft-alpaca": "qlora"}
    lora = plan("table4_lora.sh", "llama-3.1-8b-instruct", tmp_path, EXTRAS="lora")
    assert {flag(c, "--recipe") for c in stages(lora, "train.sft")} == {"qlora", "lora"}
    figure_12 = plan("figure12_full_ft.sh", "qwen2.5-7b-instruct", tmp_path)
    (prune,) = stages(figure_12, "layer_pruner.prune")
    assert flag(prune, "--method") == "iterative" and flag(prune, "--ratio") == "0.25"
    full = next(c for c in stages(figure_12, "train.sft") if flag(c, "--recipe") == "full")
    assert full[:4] == ["accelerate", "launch", "--config_file", "configs/accelerate/deepspeed_zero3.yaml"]
    assert flag(full, "--data").endswith("dolci.sgr.jsonl")
    evals = stages(figure_12, "eval.generative")
    assert {flag(c, "--tasks") for c in evals} == {"gsm8k"}
    assert any(flag(c, "--model").endswith("sgr-dolci-full/train/model") for c in evals)


@pytest.mark.parametrize(
    "model, method",
    [
        ("llama-3.1-8b-instruct", "bi"),
        ("mistral-7b-instruct-v0.3", "bi"),
        ("qwen2.5-7b-instruct", "iterative"),
    ],
)
def test_figure_7_probes_each_models_method_at_100_items(model, method, tmp_path):
    """Figure 7's caption: Qwen iterative, Mistral BI, Llama BI; the original's notebook sampled 100 items."""
    commands = plan("figure7_arithmetic.sh", model, tmp_path)
    probes = {Path(flag(c, "--output_dir")).name: c for c in stages(commands, "analysis.arithmetic_probe")}
    assert set(probes) == {"base", f"{method}-25pct", f"{method}-25pct-sgr-dolci"}
    assert flag(probes["base"], "--n_items") == "200"  # Figure 3's probe; its first 100 items are Figure 7's
    assert {flag(probes[run], "--n_items") for run in probes if run != "base"} == {"100"}


def test_the_twins_probes_figure_7_on_its_own_items_and_the_critical_layer_on_fresh_ones(tmp_path):
    """The real-model twin (configs/studies/real.yaml): Figure 3's probe on 60 items picks the critical layer,
    measured on the next 300 items; Figure 7's unpruned, pruned and recovered models on 300 items
    (FIGURE7_PROBE_ITEMS overrides it for one run)."""
    commands = plan("figures1-4_sweep.sh", "smollm2-135m-instruct", tmp_path, STUDY="real")
    probes = {Path(flag(c, "--output_dir")).name: c for c in stages(commands, "analysis.arithmetic_probe")}
    assert (flag(probes["base"], "--n_items"), flag(probes["base"], "--ablate_layers")) == ("60", "all")
    assert (flag(probes["critical"], "--n_items"), flag(probes["critical"], "--skip_items")) == ("360", "60")
    for items, env in (("300", {}), ("400", {"FIGURE7_PROBE_ITEMS": "400"})):
        commands = plan("figure7_arithmetic.sh", "smollm2-135m-instruct", tmp_path, STUDY="real", **env)
        probes = {
            Path(flag(c, "--output_dir")).name: c for c in stages(commands, "analysis.arithmetic_probe")
        }
        assert set(probes) == {"base", "unablated", "bi-25pct", "bi-25pct-sgr-gsm8k"}
        assert {flag(probes[run], "--n_items") for run in probes if run != "base"} == {items}


GRID_SCRIPTS = {name: artifact for name, artifact in [
    ("table1_pruning.sh", "table_1"), ("table2_recovery.sh", "table_2"), ("table4_lora.sh", "table_4"),
    ("table6_ratios.sh", "table_6"), ("figure14_sgr_vs_sft.sh", "figure_14"), ("figure5_perplexity.sh", "figure_5"),
    ("figure7_arithmetic.sh", "figure_7"), ("figure8_code.sh", "figure_8"), ("figure12_full_ft.sh", "figure_12"),
]}  # fmt: skip
NARROWINGS = [
    {},
    {"RECIPES": "lora"},
    {"METHODS": "bi", "AMOUNTS": "10pct"},
    {"RECOVERIES": "none sgr-dolci", "RECIPES": "full"},
    {"EXTRAS": "unrecovered"},
]


@pytest.mark.parametrize(
    "narrowing", NARROWINGS, ids=lambda n: " ".join(f"{k}={v}" for k, v in n.items()) or "grid"
)
@pytest.mark.parametrize("script", GRID_SCRIPTS)
def test_the_artifact_reads_the_runs_its_script_makes(script, narrowing, tmp_path):
    """Every run a script evaluates is a run its artifact's build looks for, and no other, under every
    narrowing (RECIPES=lora once made QLoRA-named runs that the lora-narrowed table never found)."""
    model = {**MODEL_OF, "table4_lora.sh": "llama-3.1-8b-instruct"}.get(script, "qwen2.5-7b-instruct")
    commands = plan(script, model, tmp_path, **narrowing)
    made = {
        str(Path(flag(c, "--output_dir")).parent.relative_to(tmp_path / model))
        for c in stages(commands, "eval.generative")
    } - {"base"}
    (build,) = stages(commands, "analysis.build_artifacts")
    narrow = {
        key: flag(build, f"--{key}").split(",")
        for key in ("methods", "amounts", "recoveries", "recipes")
        if f"--{key}" in build
    }
    extras = flag(build, "--extras").split(",") if "--extras" in build else []
    experiments = (
        load_experiments(flag(build, "--experiments"))
        .resolved(flag(build, "--model_config"), extras)
        .narrowed(**narrow)
    )
    grid = experiments.grid(GRID_SCRIPTS[script])
    expected = {
        ("pruned/" if run.recovery is None else "recovered/") + run.name
        for run in grid.runs(experiments.recipe)
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
    part = plan("figures1-4_sweep.sh", model, tmp_path, SWEEP_LAYERS="3,7")
    assert [flag(c, "--layers") for c in stages(part, "layer_pruner.sweep")] == ["3,7"]


def test_a_sweep_over_some_layers_is_complete_for_those_and_runs_again_for_more(tmp_path):
    """A finished sweep of SWEEP_LAYERS (manifest written, those layers scored) is skipped by a plan of the
    same layers and planned again by a plan of more layers, over all of them (the scored ones are kept)."""
    sweep = tmp_path / "gemma-2-2b-it" / "sweep"
    sweep.mkdir(parents=True)
    (sweep / "manifest.json").write_text("{}")
    for layer in (3, 7):
        (sweep / f"layer_{layer:03d}.json").write_text("{}")
    same = plan("figures1-4_sweep.sh", "gemma-2-2b-it", tmp_path, SWEEP_LAYERS="3,7")
    assert not stages(same, "layer_pruner.sweep") and ["[skip]", str(sweep)] in same
    more = plan("figures1-4_sweep.sh", "gemma-2-2b-it", tmp_path, SWEEP_LAYERS="3,7,9")
    assert [flag(c, "--layers") for c in stages(more, "layer_pruner.sweep")] == ["3,7,9"]


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


def test_plan_shows_the_settings_the_original_ran(tmp_path):
    """docs/fidelity.md: BI and the search in the model's dtype (bf16), every recipe at a global batch of 8
    whatever the processes, self-generation within 8,192 tokens of prompt + answer, Alpaca as run."""
    commands = plan("figure12_full_ft.sh", "qwen2.5-7b-instruct", tmp_path)
    (search,) = stages(commands, "layer_pruner.search")
    assert flag(search, "--dtype") == load_model_spec("qwen2.5-7b-instruct").dtype == "bfloat16"
    assert {flag(c, "--global_batch_size") for c in stages(commands, "train.sft")} == {"8"}
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
    and the SLURM submitter read the same graph."""
    lines = [line for line in (REPO_ROOT / "scripts" / script).read_text().splitlines() if line.strip()]
    name = script.removesuffix(".sh")
    assert lines[-1] == f'exec python -m orchestration.plan {name} "${{1:-${{MODEL_CONFIG:-}}}}"'
    assert not [line for line in lines if line.startswith(("source", "python", "run_", "stage"))]


def test_the_plan_passes_each_stages_own_defaults(tmp_path):
    """A default is written once: unset, every setting the plan passes is the stage's own dataclass default or
    the task registry's, so changing either changes the scripts."""
    from analysis.arithmetic_probe import ProbeArgs
    from eval.classification import ClassificationArgs
    from eval.generative import GenerativeArgs
    from infra.task_registry import registry
    from layer_pruner.prune import PruneArgs
    from self_generate.generate import GenerateArgs

    commands = plan("table2_recovery.sh", "llama-3.1-8b-instruct", tmp_path)
    commands += plan("figures1-4_sweep.sh", "llama-3.1-8b-instruct", tmp_path)
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
    """Run.name writes a run's name and parse_run_name reads it, in one module; every run of every grid
    round-trips (method, amount, recovery, dataset, and the recipe only when it is not the default)."""
    from infra.experiments import parse_run_name

    if "artifacts" not in (load_yaml(grid_file) or {}):
        pytest.skip(f"{grid_file.name} is not an experiment grid")
    experiments = load_experiments(grid_file)
    everything = experiments.resolved(None, experiments.extras())
    for grid in everything.artifacts.values():
        for run in grid.runs(experiments.recipe):
            assert parse_run_name(run.name) == run


def test_the_studies_settings_are_documented_where_they_are_defined():
    """Every field of a study that a variable overrides says so and what it does (python -m orchestration.study
    --variables), and every profile reads into the dataclass."""
    from orchestration.study import STUDY_DIR, Study, env_variables, study_fields

    variables = env_variables()
    assert {
        "METHODS",
        "SEED",
        "ITEMS",
        "SWEEP_LAYERS",
        "N_ITEMS",
        "SAMPLES",
        "ABLATE",
        "FIGURE12_TASKS",
    } <= set(variables)
    for name in variables.values():
        assert study_fields()[name].metadata["help"], name
    for profile in STUDY_DIR.glob("*.yaml"):
        assert isinstance(load_study(profile.stem, {}), Study)
    real = load_study("real", {"SEED": "3"})
    assert (real.probe_seed, real.out, real.seed) == (45, "outputs/real-seed3", 3)
    assert load_study("toy", {"ITEMS": "4", "METHODS": "bi,reverse"}).items == 4
    assert load_study("toy", {"METHODS": "bi reverse"}).methods == ["bi", "reverse"]


def test_a_local_run_starts_a_stage_when_its_inputs_are_complete_and_stops_at_a_failure(tmp_path):
    """The local executor: two lanes run independent stages side by side; a stage waits for the stages that
    write what it reads; the first failure ends the run with its exit status and nothing after it starts."""
    from orchestration.graph import Stage
    from orchestration.local import run_graph
    from orchestration.plan import Plan

    p = Plan("llama-3.1-8b-instruct", study(OUT=str(tmp_path)))
    log = tmp_path / "log"

    def step(name: str, inputs: list[str], seconds: float, code: int = 0) -> Stage:
        args = [("--name", name), ("--log", str(log)), ("--seconds", seconds), ("--code", code)]
        return Stage("tests.helpers.step", args, [str(tmp_path / name)], inputs)

    p.add(step("a", [], 1.0))
    p.add(step("b", [], 1.0))
    p.add(step("c", [str(tmp_path / "a")], 0.1))
    p.study.jobs = 2
    assert run_graph(p, p.study) == 0
    events = {
        line.split()[0] + " " + line.split()[1]: float(line.split()[2])
        for line in log.read_text().splitlines()
    }
    assert events["start b"] < events["end a"]  # side by side
    assert events["start c"] >= events["end a"]  # after what it reads
    log.unlink()
    q = Plan("llama-3.1-8b-instruct", study(OUT=str(tmp_path)))
    q.add(step("x", [], 0.1, code=3))
    q.add(step("y", [str(tmp_path / "x")], 0.1))
    assert run_graph(q, q.study) == 3
    assert "start y" not in log.read_text()
