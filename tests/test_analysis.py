"""analysis: degeneration metrics, the arithmetic probe and BI profile against independent computations,
the code-error taxonomy, and every table and figure built from fixture results."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pytest
import torch

from analysis.arithmetic_probe import (
    encode_item,
    probe_items,
    rewrite_context,
    run_probe,
    sample_records,
    score_logits,
)
from analysis.bi_profile import cosine_profile
from analysis.build_artifacts import ARTIFACTS, build
from analysis.build_artifacts import main as build_main
from analysis.code_errors import outcome_distribution
from analysis.degeneration import rep_n, response_metrics, self_bleu, sentences, summarize, words
from infra.config import ConfigError
from infra.datasets import load_records
from infra.modeling import load_model, load_tokenizer
from infra.paths import REPO_ROOT
from layer_pruner.inmemory import layers_removed
from layer_pruner.scoring import block_influence
from tests.helpers.degeneration_reference import original_definition
from tests.helpers.fixture_results import BASE, write_fixture_results
from tests.helpers.hub_records import arithmetic_records

# DataFrame.sample(200, random_state=42).index[:5] of the 2,000 arithmetic_1dc-form records (numpy's legacy
# RandomState(42): the same in every process and on every machine).
PANDAS_SAMPLE_42 = [1860, 353, 1333, 905, 1289]

# The fixture trees hold every method's runs for every artifact: the paper's grid extended.
FULL_GRID = REPO_ROOT / "configs" / "experiments" / "paper_full.yaml"


def test_rep_n_and_self_bleu_by_hand():
    assert rep_n(words("a b a b a"), 2) == pytest.approx(1 - 2 / 4)  # ab, ba, ab, ba: 2 unique of 4
    assert rep_n(words("a b c d"), 3) == 0.0
    assert rep_n(words("a b"), 3) is None  # fewer words than n
    assert rep_n([], 2) is None
    # Two identical sentences: each is the other's perfect reference, BLEU 1.
    assert self_bleu([["the", "cat", "sat", "."]] * 2) == pytest.approx(1.0)
    # Disjoint sentences: no unigram match, BLEU 0 (NLTK returns 0 before smoothing).
    assert self_bleu([list("abcd"), list("efgh")]) == 0.0
    # "a b c d" against "a b c e" (and back): p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0 -> 0.1/1 (method 1).
    expected = math.exp((math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2) + math.log(0.1)) / 4)
    assert self_bleu([list("abcd"), list("abce")]) == pytest.approx(expected)


def test_degeneration_follows_the_original_definition():
    # Lowercased NLTK sentences and words; sentences under 4 tokens are neither hypotheses nor references.
    assert sentences("The cat sat. The cat sat!") == [["the", "cat", "sat", "."], ["the", "cat", "sat", "!"]]
    short = response_metrics("Yes. The cat sat on the mat.")
    assert short["self_bleu_4"] is None  # one sentence of 4+ tokens: nothing to compare it with
    assert response_metrics("One sentence only here.")["self_bleu_4"] is None
    empty = response_metrics("")
    assert empty == {"rep_2": None, "rep_3": None, "rep_4": None, "self_bleu_4": None, "length": 0.0}
    # rep-n on lowercased tokens; length on the text as written.
    one = response_metrics("The cat THE cat the cat")
    assert one["rep_2"] == pytest.approx(1 - 2 / 5) and one["length"] == 6.0
    summary = summarize([{"response": ""}, {"response": "the cat the cat the cat"}, {"response": "x y x"}])
    assert summary["rep_2_n"] == 2 and summary["rep_2"] == pytest.approx(100 * ((1 - 2 / 5) + 0.0) / 2)
    assert summary["length"] == pytest.approx((0 + 6 + 3) / 3) and summary["self_bleu_4"] is None


def test_degeneration_equals_nltk_on_100_texts(real_data):
    import random

    # Real model solutions (GSM8K) and degenerate variants: looping sentences, cut words, short lines.
    solutions = [
        record[key]["solution"]
        for record in load_records(str(real_data / "gsm8k" / "example_model_solutions.jsonl.gz"))[:25]
        for key in ("6b_finetuning", "175b_verification")
    ]
    rng = random.Random(3)
    texts = list(solutions)
    while len(texts) < 100:
        base = rng.choice(solutions).split(". ")
        loop = ". ".join(rng.choice(base) for _ in range(rng.randint(2, 12)))
        texts.append(loop if rng.random() < 0.7 else loop[: rng.randint(0, len(loop))])
    ours = summarize([{"response": t} for t in texts])
    reference = original_definition(texts)
    for metric, value in reference.items():
        assert ours[metric] == pytest.approx(value, abs=1e-9), metric
    assert ours["self_bleu_4_n"] > 50


def test_probe_item_rewriting():
    items = probe_items([{"context": "\n\nQ: What is (4 - 7) - 3?\n\nA:", "completion": " -6"}])
    assert rewrite_context("\n\nQ: What is 1?\n\nA:") == "Question: What is 1?\nAnswer:"
    assert items[0].text.endswith("Question: What is (4 - 7) - 3?\nAnswer: -") and items[0].digit == "6"
    assert items[0].text.startswith("Question: What is (4 * 4) * 1? Answer: 16\nQuestion: What is (8 + 3)")
    with pytest.raises(ConfigError, match="not a number"):
        probe_items([{"context": "Q: x\nA:", "completion": " many"}])


@pytest.mark.parametrize("arch", ["llama", "gemma2"])
def test_probe_equals_plain_transformers_with_the_layer_removed(arch, tiny_models):
    model = load_model(str(tiny_models[arch]), dtype="float32", device="cpu")
    tokenizer = load_tokenizer(str(tiny_models[arch]))
    items = probe_items(sample_records(arithmetic_records(), 24, 42))
    report = run_probe(model, tokenizer, items, [2, 5], batch_size=8)
    # The few-shot prefix is run once per ablation and the items after it (right-padded, batched).
    assert report["prefix_tokens_shared"] > 20
    uncached = run_probe(model, tokenizer, items, [2, 5], batch_size=8, prefix=None)
    assert uncached["prefix_tokens_shared"] == 0

    encoded = [encode_item(tokenizer, item) for item in items]

    def independent(removed):  # one unpadded forward per item, layer taken out of the module list
        results = []
        with layers_removed(model, removed), torch.no_grad():
            for entry in encoded:
                logits = model(torch.tensor([entry[0]])).logits[:, -1]
                results.extend(score_logits(logits, [entry]))
        return results

    base = independent([])
    assert report["baseline"]["mean_logprob"] == pytest.approx(
        sum(lp for lp, _ in base) / len(base), abs=1e-5
    )
    assert report["baseline"]["accuracy"] == sum(hit for _, hit in base) / len(base)
    for entry in report["layers"]:
        ablated = independent([entry["layer"]])
        delta = sum(a[0] - b[0] for a, b in zip(ablated, base)) / len(base)
        assert entry["delta_logprob"] == pytest.approx(delta, abs=1e-5)
        assert entry["accuracy"] == sum(hit for _, hit in ablated) / len(ablated)
        assert entry["hits"] == [int(hit) for _, hit in ablated]
    for cached, whole in zip(report["layers"], uncached["layers"]):
        assert cached["delta_logprob"] == pytest.approx(whole["delta_logprob"], abs=1e-5)
    assert any(abs(e["delta_logprob"]) > 1e-3 for e in report["layers"])  # ablation changes something


def test_probe_sample_is_the_originals_pandas_selection():
    """``DataFrame.sample(200, random_state=42)`` of the 2,000 records, as the original notebook drew them: the
    first picks pinned (they do not depend on this process), and a sample of 100 is the first 100 of it."""
    records = arithmetic_records()
    sample = sample_records(records, 200, 42)
    positions = {record["context"]: index for index, record in enumerate(records)}
    assert [positions[r["context"]] for r in sample[:5]] == PANDAS_SAMPLE_42
    assert sample_records(records, 100, 42) == sample[:100]
    assert sample != sample_records(records, 200, 43)


def test_bi_profile_through_nnsight_equals_the_pruner_scores(tiny_models):
    model = load_model(str(tiny_models["qwen2"]), dtype="float32", device="cpu")
    tokenizer = load_tokenizer(str(tiny_models["qwen2"]), padding_side="right")
    texts = ["Question one is here and long enough.\nAnswer 5", "short", "A third text 1 2 3 with words"]
    cosines = cosine_profile(model, tokenizer, texts, batch_size=2)
    influence = block_influence(model, tokenizer, texts, batch_size=2, progress=False)
    assert len(cosines) == 8
    assert max(abs((1 - c) - b) for c, b in zip(cosines, influence)) < 1e-6


def test_code_error_distribution():
    records = [{"outcome": "passed"}] * 3 + [{"outcome": "syntax_error_unbalanced_brackets"}]
    distribution = outcome_distribution(records)
    assert distribution["passed"] == 0.75 and distribution["syntax_error_unbalanced_brackets"] == 0.25
    assert sum(distribution.values()) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="items:2: no code outcome"):
        outcome_distribution([{"outcome": "passed"}, {"score": 1}])


def plotted(directory, name: str) -> list[dict]:
    return json.loads((directory / f"{name}.data.json").read_text())


def test_every_artifact_builds_from_fixture_results(tmp_path):
    results = write_fixture_results(tmp_path / "results")
    report = build(results, tmp_path / "artifacts", experiments=FULL_GRID)
    assert set(report["missing"]) == {"released"}  # no released pair in the tree
    assert sorted(report["built"]) == sorted(set(ARTIFACTS) - {"released"})
    artifacts = tmp_path / "artifacts"
    for name, paths in report["built"].items():
        if name.startswith("figure"):
            assert sorted(p.rsplit(".", 1)[1] for p in paths) == ["json", "pdf", "png"]
            drawn = plotted(artifacts, name)
            assert any(panel["lines"] or panel["bars"] for panel in drawn), name
    # Figure 1 draws each task's score with one layer removed over the unpruned score: the sweep's files.
    baseline = json.loads((results / "sweep" / "baseline.json").read_text())["scores"]
    (curves,) = [panel for panel in plotted(artifacts, "figure_1") if panel["lines"]][:1]
    gsm8k = next(line for line in curves["lines"] if line["label"] == "GSM8K")
    for layer, value in zip(gsm8k["x"], gsm8k["y"]):
        score = json.loads((results / "sweep" / f"layer_{int(layer):03d}.json").read_text())["scores"][
            "gsm8k"
        ]
        assert value == pytest.approx(score / baseline["gsm8k"])
    # Figure 7's bars are the probe accuracies of the unpruned model and each run of its grid, in percent.
    figure_7 = plotted(artifacts, "figure_7")[0]
    accuracy = {
        run: 100
        * json.loads((results / "probe" / run / "arithmetic_probe.json").read_text())["baseline"]["accuracy"]
        for run in ("base", "bi-25pct", "bi-25pct-sgr-dolci")
    }
    bars = dict(zip(figure_7["bar_labels"], figure_7["bars"]))
    assert bars["Unpruned"] == pytest.approx(accuracy["base"])
    assert bars["Block influence 25%"] == pytest.approx(accuracy["bi-25pct"])
    assert bars["Block influence 25% + SGR (dolci)"] == pytest.approx(accuracy["bi-25pct-sgr-dolci"])
    # Figure 6 draws Table 6's generative means against the share of layers removed.
    rows = {row["run"]: row for row in csv.DictReader(open(artifacts / "table_6.csv"))}
    generative = next(panel for panel in plotted(artifacts, "figure_6") if panel["title"] == "Generative")
    line = next(line for line in generative["lines"] if line["label"] == "Iterative + SGR (dolci)")
    labels = ["Iterative 2 layers", "Iterative 10%", "Iterative 15%", "Iterative 25%"]
    table = [100 * float(rows[f"{label} + SGR (dolci)"]["generative_mean"]) for label in labels]
    assert line["y"][-4:] == pytest.approx(table)
    # Table 1: BI at 25% keeps 45% of the generative scores and 1 - 0.55/4 of the classification ones.
    rows = list(csv.DictReader(open(tmp_path / "artifacts" / "table_1.csv")))
    bi = next(row for row in rows if row["run"] == "Block influence 25% (no recovery)")
    assert float(bi["gsm8k"]) == pytest.approx(round(BASE["gsm8k"] * 0.45, 4) / BASE["gsm8k"], abs=1e-6)
    assert float(bi["classification_mean"]) == pytest.approx(1 - 0.55 / 4, abs=1e-3)
    # Table 1's rows are the grid's: each method after Alpaca SFT, the unrecovered models as extras.
    assert [row["run"] for row in rows] == [
        f"{label} 25%{suffix}"
        for label in ("Reverse-order", "Block influence", "Iterative")
        for suffix in (" (no recovery)", " + SFT (alpaca)")
    ]
    assert "Iterative 25% + SGR (dolci)" in (tmp_path / "artifacts" / "table_2.md").read_text()
    table_4 = [row["run"] for row in csv.DictReader(open(tmp_path / "artifacts" / "table_4.csv"))]
    assert table_4 == [
        f"{label} 25% + SGR (dolci) [{recipe}]"
        for label in ("Block influence", "Reverse-order")
        for recipe in ("QLoRA", "LoRA")
    ]
    table_6 = [row["run"] for row in csv.DictReader(open(tmp_path / "artifacts" / "table_6.csv"))]
    assert len(table_6) == 3 * 4 * 2 and "Iterative 15% + SGR (dolci)" in table_6
    assert "SFT (alpaca)" not in " ".join(table_6)  # Table 6 is SGR (Dolci) at each amount
    assert r"\toprule" in (tmp_path / "artifacts" / "table_6.tex").read_text()


def test_figure_7_averages_over_models_each_with_its_method(tmp_path):
    """The paper's Figure 7 is the mean over models, each model with its own method (Llama BI, Qwen
    iterative): the bars are those means, not one method's."""
    trees = [
        write_fixture_results(tmp_path / name, seed)
        for seed, name in enumerate(("llama-3.1-8b-instruct", "qwen2.5-7b-instruct"))
    ]
    (trees[1] / "probe" / "iterative-25pct" / "arithmetic_probe.json").write_text(
        json.dumps(
            {"n_items": 100, "baseline": {"accuracy": 0.31, "hits": [1] * 31 + [0] * 69}, "layers": []}
        )
    )
    args = [
        "--cross_model",
        ",".join(map(str, trees)),
        "--output_dir",
        str(tmp_path / "all"),
        "--only",
        "figure_7",
    ]
    assert build_main(args) == 0
    bars = dict(zip(*(plotted(tmp_path / "all", "figure_7")[0][key] for key in ("bar_labels", "bars"))))
    pruned = next(value for label, value in bars.items() if label.startswith("Pruned (n=2)"))
    assert pruned == pytest.approx((15.0 + 31.0) / 2)  # Llama's BI 25% and Qwen's iterative 25%
    label = next(label for label in bars if label.startswith("Pruned (n=2)"))
    assert (
        "llama-3.1-8b-instruct: Block influence 25%" in label
        and "qwen2.5-7b-instruct: Iterative 25%" in label
    )
    assert bars["Unpruned (n=2)"] == pytest.approx(90.0)
    with pytest.raises(SystemExit) as exit_info:  # tables are per model
        build_main(["--cross_model", str(trees[0]), "--output_dir", str(tmp_path), "--only", "table_1"])
    assert exit_info.value.code == 2


def test_build_artifacts_names_what_is_missing(tmp_path, capsys):
    results = tmp_path / "results"
    (results / "base" / "eval").mkdir(parents=True)
    (results / "base" / "eval" / "gsm8k.json").write_text(json.dumps({"score": 0.5}))
    assert build_main(["--results", str(results), "--output_dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "skipped figure_1" in out and "sweep" in out and "1 built" in out
    # The only artifact built: that the paper reports nothing for a results tree named "results".
    assert "nothing to compare" in (tmp_path / "out" / "reproduction.md").read_text()
    assert build_main(["--results", str(results), "--output_dir", str(tmp_path / "out"), "--strict"]) == 1
    assert build_main(["--results", str(tmp_path / "nothing"), "--output_dir", str(tmp_path / "out")]) == 2


@pytest.mark.parametrize("notebook", ["paper_figures.ipynb", "sweep_and_probe.ipynb"])
def test_notebooks_run_top_to_bottom(notebook, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    from infra.paths import REPO_ROOT

    results = write_fixture_results(tmp_path / "results")
    monkeypatch.setenv("LPR_RESULTS", str(results))
    monkeypatch.setenv("LPR_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    book = nbformat.read(REPO_ROOT / "analysis" / notebook, as_version=4)
    NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}
    ).execute()
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "artifacts" / "figure_1.png").is_file()


def test_degeneration_cli_reports_change_from_the_baseline(tmp_path, capsys):
    from analysis.degeneration import main as degeneration_main

    base = tmp_path / "base.jsonl"
    base.write_text(json.dumps({"response": "a b c d a b c e"}) + "\n")
    pruned = tmp_path / "pruned.jsonl"
    pruned.write_text(json.dumps({"response": "a b a b a b"}) + "\n")
    output = tmp_path / "degeneration.json"
    assert degeneration_main(["--items", str(pruned), "--baseline", str(base), "--output", str(output)]) == 0
    result = json.loads(output.read_text())["files"]["pruned.jsonl"]
    assert result["rep_2"] == pytest.approx(100 * (1 - 2 / 5))  # ab ba ab ba ab
    assert result["change"]["length"] == pytest.approx(6 - 8)
    # base: ab bc cd da ab bc ce, 5 unique of 7
    assert result["change"]["rep_2"] == pytest.approx(100 * ((1 - 2 / 5) - (1 - 5 / 7)))
    (tmp_path / "bad.jsonl").write_text('{"text": "x"}\n')
    assert degeneration_main(["--items", str(tmp_path / "bad.jsonl"), "--output", str(output)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


def test_artifacts_follow_a_narrowed_grid(tmp_path):
    """METHODS=bi on the scripts: Figure 12 (grid: iterative) is drawn from the BI runs the scripts made."""
    results = write_fixture_results(tmp_path / "results")
    report = build(results, tmp_path / "plain", ["figure_12", "table_4"], FULL_GRID)
    assert report["missing"] == {}
    shutil.rmtree(results / "recovered" / "iterative-25pct-sgr-dolci-full")
    assert "figure_12" in build(results, tmp_path / "gone", ["figure_12"], FULL_GRID)["missing"]
    narrowed = build(
        results, tmp_path / "bi", ["figure_12", "table_4"], FULL_GRID, narrow={"methods": ["bi"]}
    )
    assert set(narrowed["built"]) == {"figure_12", "table_4"}
    rows = list(csv.DictReader(open(tmp_path / "bi" / "table_4.csv")))
    assert [row["run"] for row in rows] == [
        "Block influence 25% + SGR (dolci) [QLoRA]",
        "Block influence 25% + SGR (dolci) [LoRA]",
    ]


def test_training_perplexity_is_the_original_logging_windows():
    """Figure 5's default: exp of the mean training loss over each 10 logged steps, as the original's
    Trainer logs (logging_steps 10) gave it; a trailing partial window is not drawn."""
    from analysis.figures import training_perplexity

    losses = {step: 3.0 - 0.05 * step for step in range(1, 26)}
    records = [{"step": step, "train_loss": loss} for step, loss in losses.items()]
    records += [{"step": 10, "eval_loss": 9.0}, {"step": 25, "mean_train_loss": 1.0, "summary": True}]
    expected = [
        (10, math.exp(sum(losses[s] for s in range(1, 11)) / 10)),
        (20, math.exp(sum(losses[s] for s in range(11, 21)) / 10)),
    ]
    points = training_perplexity(records)
    assert [step for step, _ in points] == [step for step, _ in expected]
    assert [value for _, value in points] == pytest.approx([value for _, value in expected])


@pytest.mark.parametrize("notebook", ["paper_figures.ipynb", "sweep_and_probe.ipynb"])
def test_notebooks_read_where_the_toy_study_writes_by_default(notebook):
    """Run without LPR_RESULTS, a notebook reads the toy study's results tree (the README's first command)."""
    import re

    from orchestration.study import load_study

    text = (REPO_ROOT / "analysis" / notebook).read_text()
    default = re.search(r'os\.environ\.get\(\\"LPR_RESULTS\\", \\"([^\\"]+)\\"\)', text).group(1)
    toy = load_study("toy", {})
    assert default == f"{toy.out}/{toy.model_config}"
