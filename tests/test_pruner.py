from __future__ import annotations

import json

import pytest
import torch

from infra.modeling import decoder_layers, load_model, load_tokenizer
from infra.study_models.tiny_models import ARCHITECTURES
from layer_pruner import prune
from layer_pruner.inmemory import drop_layers, layers_removed
from layer_pruner.iterative import GreedySearch, search_progress, single_layer_sweep
from layer_pruner.materialize import materialize
from layer_pruner.plan import PlanError, PrunePlan, layers_to_remove, validate_removal
from layer_pruner.scoring import angular_distances, block_influence, lowest

TEXTS = [
    "Question: What is (3 + 4) * 2?\nAnswer: 14",
    "def add(x, y):\n    return [x + y, (x * y)]",
    "The council met on Monday and approved the bridge.",
    "Tom has 5 apples. He gives 2 away. How many are left? 3",
]


def encode(tokenizer):
    tokenizer.padding_side = "left"
    return tokenizer(TEXTS, return_tensors="pt", padding=True)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_mergekit_checkpoint_equals_in_memory_pruning(tiny_models, tmp_path, arch):
    source = str(tiny_models[arch])
    removed = [2, 5]  # a non-final pair: Gemma-2's sliding/full pattern and Qwen2's windows must follow
    plan = PrunePlan(source, "layers", 8, removed, n=2)
    materialize(plan, tmp_path / "pruned", dtype="float32")
    merged = load_model(str(tmp_path / "pruned"), dtype="float32", device="cpu")
    in_memory = drop_layers(load_model(source, dtype="float32", device="cpu"), removed)
    original_types = getattr(load_model(source, dtype="float32", device="cpu").config, "layer_types", None)
    assert merged.config.num_hidden_layers == 6 == len(decoder_layers(merged))
    if original_types is not None:
        kept_types = [original_types[i] for i in plan.kept_layers]
        assert merged.config.layer_types == kept_types == in_memory.config.layer_types
    tokenizer = load_tokenizer(str(tmp_path / "pruned"))
    batch = encode(tokenizer)
    with torch.no_grad():
        merged_logits = merged(**batch).logits
        memory_logits = in_memory(**batch).logits
        assert torch.isfinite(merged_logits).all()
        assert (merged_logits - memory_logits).abs().max().item() == 0.0
        kwargs = dict(max_new_tokens=12, do_sample=False, use_cache=True, pad_token_id=tokenizer.pad_token_id)
        assert torch.equal(merged.generate(**batch, **kwargs), in_memory.generate(**batch, **kwargs))
    written = json.loads((tmp_path / "pruned" / "plan.json").read_text())
    assert written["removed_layers"] == [2, 5] and written["kept_layers"] == [0, 1, 3, 4, 6, 7]
    mergekit_yaml = (tmp_path / "pruned" / "mergekit_config.yaml").read_text()
    assert (
        "layer_range:\n    - 0\n    - 2" in mergekit_yaml.replace("      ", "    ")
        or "[0, 2]" in mergekit_yaml
    )


def test_kv_cache_generation_matches_full_recompute(tiny_models):
    model = drop_layers(load_model(str(tiny_models["gemma2"]), dtype="float32", device="cpu"), [1, 4])
    tokenizer = load_tokenizer(str(tiny_models["gemma2"]))
    batch = tokenizer(TEXTS[:1], return_tensors="pt")
    with torch.no_grad():
        cached = model.generate(**batch, max_new_tokens=10, do_sample=False, use_cache=True)
        uncached = model.generate(**batch, max_new_tokens=10, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)


def make_identity(model, layers):
    with torch.no_grad():
        for index in layers:
            layer = decoder_layers(model)[index]
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    return model


@pytest.mark.parametrize("arch", ["llama", "qwen2", "mistral"])
def test_block_influence_ranks_identity_layer_lowest(tiny_models, arch):
    model = make_identity(load_model(str(tiny_models[arch]), dtype="float32", device="cpu"), [3])
    tokenizer = load_tokenizer(str(tiny_models[arch]))
    scores = block_influence(model, tokenizer, TEXTS, batch_size=2, progress=False)
    assert scores[3] == pytest.approx(0.0, abs=1e-6)
    assert min(range(8), key=scores.__getitem__) == 3
    assert all(score > 1e-3 for i, score in enumerate(scores) if i != 3)
    # Batching with padding gives the same running means as one text at a time.
    one_at_a_time = block_influence(model, tokenizer, TEXTS, batch_size=1, progress=False)
    assert one_at_a_time == pytest.approx(scores, abs=1e-5)
    with torch.no_grad():  # a non-uniform final norm, so "after the norm" is not a mere rescaling
        model.model.norm.weight.uniform_(0.2, 2.0)
    shortgpt = block_influence(model, tokenizer, TEXTS, variant="hf_hidden_states", progress=False)
    assert shortgpt[:7] == pytest.approx(scores[:7], abs=1e-5)  # only the last entry (after the norm) differs
    assert shortgpt[7] != pytest.approx(scores[7], abs=1e-3)


def test_angular_distance_picks_block_of_identities(tiny_models):
    model = make_identity(load_model(str(tiny_models["llama"]), dtype="float32", device="cpu"), [4, 5, 6])
    tokenizer = load_tokenizer(str(tiny_models["llama"]))
    distances = angular_distances(model, tokenizer, TEXTS, 3, batch_size=2, progress=False)
    assert len(distances) == 6
    assert distances[4] == pytest.approx(0.0, abs=1e-4)
    assert min(range(6), key=distances.__getitem__) == 4


def test_reverse_removes_the_tail(tiny_models, tmp_path):
    code = prune.main(
        [
            "--model",
            str(tiny_models["llama"]),
            "--method",
            "reverse",
            "--ratio",
            "0.25",
            "--output_dir",
            str(tmp_path / "rev"),
            "--plan_only",
        ]
    )
    assert code == 0
    plan = PrunePlan.load(tmp_path / "rev")
    assert plan.removed_layers == [6, 7] and plan.n == 2
    assert layers_to_remove(32, ratio=0.25) == 8
    assert lowest([0.5, 0.1, 0.1, 0.9], 1) == [2]  # ties go to the later layer


class CountingScorer:
    """Scores a candidate by which layers are present: a constructed, known landscape."""

    def __init__(self, values):
        self.values = values
        self.calls = 0

    def __call__(self, model, tokenizer):
        self.calls += 1
        present = [layer.self_attn.layer_idx for layer in decoder_layers(model)]
        kept_ids = {id(layer) for layer in decoder_layers(model)}
        missing = [i for i, layer in enumerate(self.originals) if id(layer) not in kept_ids]
        assert present == list(range(len(present)))  # re-indexed
        return {"a": {"score": self.values(missing)}, "b": {"score": 1.0}}


def test_iterative_picks_best_ties_later_never_layer_zero_and_resumes(tiny_models, tmp_path):
    model = load_model(str(tiny_models["llama"]), dtype="float32", device="cpu")
    tokenizer = load_tokenizer(str(tiny_models["llama"]))

    def landscape(missing):
        if not missing:
            return 1.0
        penalty = {0: 0.0, 1: 0.5, 2: 0.7, 3: 0.7, 4: 0.2, 5: 0.9, 6: 0.9, 7: 0.1}
        return sum(penalty[i] for i in missing) / len(missing) - 0.01 * len(missing)

    scorer = CountingScorer(landscape)
    scorer.originals = list(decoder_layers(model))
    search = GreedySearch(model, tokenizer, scorer, 2, tmp_path / "search", settings={"k": 1}, progress=False)
    removed, history = search.run()
    # Layer 0 has the best score if removed, but is never a candidate; 5 and 6 tie: the later one wins.
    assert removed == [6, 5]
    assert all("0" not in step["candidates"] for step in history)
    assert scorer.calls == 1 + 7 + 6
    assert len(decoder_layers(model)) == 8  # candidates were temporary

    again = CountingScorer(landscape)
    again.originals = scorer.originals
    resumed = GreedySearch(model, tokenizer, again, 2, tmp_path / "search", settings={"k": 1}, progress=False)
    assert resumed.run()[0] == [6, 5]
    assert again.calls == 0

    # Array mode: a task evaluates one candidate of the first unfinished step, then the merge run finishes.
    array_scorer = CountingScorer(landscape)
    array_scorer.originals = scorer.originals
    for index in range(7):
        GreedySearch(model, tokenizer, array_scorer, 1, tmp_path / "array", settings={}, progress=False).run(
            index
        )
    assert array_scorer.calls == 1 + 7
    final = GreedySearch(model, tokenizer, array_scorer, 1, tmp_path / "array", settings={}, progress=False)
    assert final.run()[0] == [6]
    assert array_scorer.calls == 8
    with pytest.raises(ValueError, match="other settings"):
        GreedySearch(model, tokenizer, array_scorer, 1, tmp_path / "array", settings={"k": 2})


def test_search_progress_guides_array_tasks_step_by_step(tiny_models, tmp_path):
    """What the SLURM submitter reads from the files (no model) is what the search does next: run the
    missing candidates of each step as array tasks would, with one task failed and rerun."""
    model = load_model(str(tiny_models["llama"]), dtype="float32", device="cpu")
    tokenizer = load_tokenizer(str(tiny_models["llama"]))
    scorer = CountingScorer(lambda missing: 1.0 - 0.1 * sum(missing) / max(len(missing), 1))
    scorer.originals = list(decoder_layers(model))
    state = tmp_path / "search"

    def search():
        return GreedySearch(model, tokenizer, scorer, 2, state, settings={}, progress=False)

    assert search_progress(state, 8, 2) == (1, list(range(7)))  # nothing yet: step 1, every candidate
    for index in [i for i in range(7) if i != 4]:  # the task of candidate 4 (layer 5) failed
        search().run(index)
    assert search_progress(state, 8, 2) == (1, [4])
    search().run(4)
    assert search_progress(state, 8, 2) == (2, list(range(6)))  # layer 1 won step 1 (the least penalty)
    for index in range(6):
        search().run(index)
    assert search_progress(state, 8, 2) is None
    calls = scorer.calls
    assert search().run()[0] == [1, 2] and scorer.calls == calls  # the final run only merges


def test_every_amount_is_a_prefix_of_one_search_continued_not_redone(tiny_models, tmp_path):
    """One search serves every pruning amount: a search of 2 steps is the first 2 steps of one of 5 (run
    apart, the same layers); continued from 2 to 5 steps it scores only the new steps; blocks of candidates
    sharing one engine cover a step as one-candidate tasks do."""
    from layer_pruner.iterative import read_order

    model = load_model(str(tiny_models["llama"]), dtype="float32", device="cpu")
    tokenizer = load_tokenizer(str(tiny_models["llama"]))

    def landscape(missing):
        return 1.0 - sum((7 * i) % 5 + 0.1 * i for i in missing) / 10

    def search(n, state, scorer):
        return GreedySearch(model, tokenizer, scorer, n, state, settings={"tasks": ["a"]}, progress=False)

    scorer = CountingScorer(landscape)
    scorer.originals = list(decoder_layers(model))
    five = search(5, tmp_path / "five", scorer).run()[0]
    for n in (2, 3):
        assert search(n, tmp_path / f"alone{n}", scorer).run()[0] == five[:n]
    shared = tmp_path / "shared"
    assert search(2, shared, scorer).run()[0] == five[:2]
    calls = scorer.calls
    assert search(5, shared, scorer).run()[0] == five and read_order(shared)["removed"] == five
    assert scorer.calls - calls == 5 + 4 + 3  # steps 3, 4 and 5 only
    blocks = tmp_path / "blocks"
    for block in range(3):  # 7 candidates in blocks of 3: tasks 0, 1, 2
        search(1, blocks, scorer).run(block, block_size=3)
    calls = scorer.calls
    assert search(1, blocks, scorer).run()[0] == five[:1] and scorer.calls == calls


def test_single_layer_sweep_writes_one_file_per_layer(tiny_models, tmp_path):
    model = load_model(str(tiny_models["llama"]), dtype="float32", device="cpu")

    def scorer(model, tokenizer):
        n = len(decoder_layers(model))
        return {"gsm8k": {"score": n / 10, "items": [{"id": "gsm8k/0", "response": f"{n} layers"}]}}

    results = single_layer_sweep(model, None, scorer, tmp_path, progress=False)
    assert sorted(results) == list(range(1, 8))
    assert all(scores == {"gsm8k": 0.7} for scores in results.values())
    assert json.loads((tmp_path / "baseline.json").read_text())["scores"] == {"gsm8k": 0.8}
    assert (
        tmp_path / "layer_003.gsm8k.jsonl"
    ).read_text().strip() == '{"id": "gsm8k/0", "response": "7 layers"}'


@pytest.mark.parametrize(
    "layers, message",
    [
        ("8", "out of range"),
        ("2,2", "more than once"),
        ("-1", "negative"),
        ("0,1,2,3,4,5,6,7", "removing all 8 layers"),
    ],
)
def test_bad_plans_fail_and_write_nothing(tiny_models, tmp_path, capsys, layers, message):
    out = tmp_path / "bad"
    code = prune.main(
        [
            "--model",
            str(tiny_models["llama"]),
            "--method",
            "layers",
            "--layers",
            layers,
            "--output_dir",
            str(out),
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_not_a_causal_lm_is_refused(tmp_path, capsys):
    not_model = tmp_path / "not_a_model"
    not_model.mkdir()
    (not_model / "config.json").write_text(
        json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"], "num_hidden_layers": 4})
    )
    assert (
        prune.main(
            [
                "--model",
                str(not_model),
                "--method",
                "reverse",
                "--n",
                "1",
                "--output_dir",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "not a causal language model" in capsys.readouterr().err
    assert (
        prune.main(
            [
                "--model",
                str(tmp_path),
                "--method",
                "reverse",
                "--n",
                "1",
                "--output_dir",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "no config.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_removing_layer_zero_warns(tiny_models, tmp_path, capsys):
    with pytest.warns(UserWarning, match="layer 0"):
        validate_removal(8, [0, 3])
    code = prune.main(
        [
            "--model",
            str(tiny_models["llama"]),
            "--method",
            "layers",
            "--layers",
            "0",
            "--output_dir",
            str(tmp_path / "out"),
            "--plan_only",
        ]
    )
    assert code == 0
    assert "warning: removing layer 0" in capsys.readouterr().err
    with pytest.raises(PlanError, match="cannot remove 8 of 8"):
        layers_to_remove(8, n=8)


def test_cli_prints_sanity_line(tiny_models, tmp_path, capsys, real_data):
    code = prune.main(
        [
            "--model",
            str(tiny_models["qwen2"]),
            "--method",
            "bi",
            "--n",
            "2",
            "--calibration",
            str(real_data / "gsm8k" / "test.jsonl.gz"),
            "--n_calibration",
            "4",
            "--output_dir",
            str(tmp_path / "bi"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "sanity: layers 8 -> 6, parameters" in out
    plan = PrunePlan.load(tmp_path / "bi")
    assert plan.calibration["count"] == 4 and len(plan.scores["block_influence"]) == 8
    manifest = json.loads((tmp_path / "bi" / "manifest.json").read_text())
    assert manifest["config"]["method"] == "bi" and manifest["inputs"]["base_model"]
    model = load_model(str(tmp_path / "bi"), dtype="float32", device="cpu")
    assert len(decoder_layers(model)) == 6


def test_layers_removed_restores_after_error(tiny_models):
    model = load_model(str(tiny_models["qwen2"]), dtype="float32", device="cpu")
    types = list(model.config.layer_types)
    with pytest.raises(RuntimeError):
        with layers_removed(model, [1, 2]):
            assert model.config.num_hidden_layers == 6
            raise RuntimeError("candidate failed")
    assert model.config.num_hidden_layers == 8 and model.config.layer_types == types
    assert [layer.self_attn.layer_idx for layer in decoder_layers(model)] == list(range(8))


def test_sweep_cli_scores_each_layer(tiny_models, real_data, tmp_path):
    from layer_pruner import sweep

    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"name: tiny\nhub_id: {tiny_models['mistral']}\nnum_layers: 8\nsupports_system_turn: true\n"
        "response_template: '[/INST]'\nstop_tokens: ['</s>']\ndtype: float32\n"
    )
    common = [
        "--model",
        str(tiny_models["mistral"]),
        "--model_config",
        str(config),
        "--tasks",
        "gsm8k",
        "--n_items",
        "2",
        "--max_new_tokens",
        "4",
        "--data",
        f"gsm8k={real_data / 'gsm8k' / 'test.jsonl.gz'}",
        "--output_dir",
        str(tmp_path / "sweep"),
    ]
    assert sweep.main(common + ["--layer", "3"]) == 0  # an array task
    assert sorted(p.name for p in (tmp_path / "sweep").glob("layer_*.json")) == ["layer_003.json"]
    assert not (tmp_path / "sweep" / "baseline.json").exists()  # array tasks score only their layer
    assert sweep.main(common + ["--layers", "1,2"]) == 0  # some layers: the baseline too
    assert (tmp_path / "sweep" / "baseline.json").is_file()
    assert (tmp_path / "sweep" / "manifest.json").is_file()  # complete for the layers it was asked for
    (tmp_path / "sweep" / "manifest.json").unlink()
    assert sweep.main(common + ["--layers", "1,2,4"]) == 0  # a layer left to score: written once it is
    assert (tmp_path / "sweep" / "manifest.json").is_file()
    assert sweep.main(common + ["--layers", ",".join(map(str, range(1, 8)))]) == 0  # the script's call
    assert (tmp_path / "sweep" / "manifest.json").is_file()
    assert sweep.main(common) == 0
    summary = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert sorted(summary["layers"]) == [f"layer_{i:03d}" for i in range(1, 8)]
    assert set(summary["baseline"]) == {"gsm8k"}
    items = [
        json.loads(line) for line in (tmp_path / "sweep" / "layer_005.gsm8k.jsonl").read_text().splitlines()
    ]
    from eval.tasks import sample_indices

    # The search's selection: train_test_split(train_size=2, seed=1234) of the given split.
    expected_ids = [f"gsm8k/{i}" for i in sample_indices(1319, 2, 1234)]
    assert [item["id"] for item in items] == expected_ids and all("response" in i for i in items)
    assert (tmp_path / "sweep" / "manifest.json").is_file()
