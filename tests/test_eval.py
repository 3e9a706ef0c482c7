from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from eval import classification, generative, retention
from eval.scorers import CodeOptions, code_program, extract_code, score_code, score_gsm8k, score_xsum
from eval.tasks import TaskItem, load_task, registry, sample_indices
from infra.files import load_jsonl
from tests.helpers.hub_records import humanevalplus_records, mbppplus_records

SOLUTION_KEYS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def test_gsm8k_scorer_agrees_with_labels_and_gold(real_data):
    gold = {
        record["question"]: record["answer"] for record in load_jsonl(real_data / "gsm8k" / "test.jsonl.gz")
    }
    agree = total = 0
    for record in load_jsonl(real_data / "gsm8k" / "example_model_solutions.jsonl.gz"):
        for key in SOLUTION_KEYS:
            solution = record[key]
            predicted = score_gsm8k(solution["solution"], gold[record["question"]])["score"] == 1.0
            agree += predicted == bool(solution["is_correct"])
            total += 1
    assert total == 5276
    assert agree / total >= 0.99
    assert all(score_gsm8k(answer, answer)["score"] == 1.0 for answer in gold.values())
    assert score_gsm8k("so the answer is \\boxed{1,234}", "#### 1234") == {"score": 1.0, "extracted": "1,234"}
    assert score_gsm8k("I think 17.", "#### 18")["score"] == 0.0


def response(item, full_code: str) -> str:
    """What a model writes after the assistant prefix (which ends with the HumanEval+ prompt or with
    "```python"): the rest of the code and the closing fence."""
    prompt = item.fields["prompt"] if item.task == "humaneval" else ""
    assert full_code.startswith(prompt)
    return full_code[len(prompt) :] + "```\n"


@pytest.fixture(scope="module")
def humaneval_hub(real_data, tmp_path_factory):
    """HumanEval+ as the hub publishes it (numpy `assertion` + `check` test programs)."""
    path = tmp_path_factory.mktemp("hub") / "humanevalplus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in humanevalplus_records(real_data)))
    return load_task("humaneval", data=str(path))


@pytest.fixture(scope="module")
def mbpp_hub(real_data, tmp_path_factory):
    """MBPP+ as the hub publishes it (`test_imports`, `test_list`, the plus `test` program)."""
    path = tmp_path_factory.mktemp("hub") / "mbppplus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in mbppplus_records(real_data, limit=120)))
    return load_task("mbpp", data=str(path))


@pytest.fixture(scope="module")
def mbpp_release(real_data):
    return load_task("mbpp", data=str(real_data / "mbppplus" / "MbppPlus.jsonl.gz"))


def full_solution(item) -> str:
    return item.fields["prompt"] + item.fields["canonical_solution"]


def test_hub_humaneval_canonical_pass_wrong_fail(humaneval_hub):
    assert len(humaneval_hub) == 150 and "import numpy as np" in humaneval_hub[0].fields["test"]
    results = score_code(
        humaneval_hub, [response(i, full_solution(i)) for i in humaneval_hub], progress=False
    )
    assert Counter(r["outcome"] for r in results) == {"passed": 150}
    # A wrong solution (the right one, off by a marker) fails on the first literal case with an assertion.
    wrong = [
        response(i, full_solution(i))[: -len("```\n")]
        + f"\n_right = {i.fields['entry_point']}\n"
        + f"def {i.fields['entry_point']}(*a):\n    return ('wrong', _right(*a))\n```\n"
        for i in humaneval_hub[:40]
    ]
    results = score_code(humaneval_hub[:40], wrong, progress=False)
    # None passes. Exact outputs fail the assertion; list and float outputs reach numpy's assert_allclose,
    # which cannot turn a tuple holding a string into numbers and raises from numpy instead.
    assert not any(r["score"] for r in results)
    assert all(
        r["outcome"] == "failed_assertion" or ("array" in r["detail"] or "ufunc" in r["detail"])
        for r in results
    ), [r["detail"] for r in results if r["outcome"] != "failed_assertion"]
    assert Counter(r["outcome"] for r in results)["failed_assertion"] >= 25


def test_hub_mbpp_prompt_and_tests(mbpp_hub):
    from infra.model_spec import load_model_spec
    from infra.prompts import build_messages

    item = mbpp_hub[0]
    assert item.id == "Mbpp/2" and item.fields["prompt"].startswith("Write a function to find the shared")
    assert item.fields["test_assertion"] == item.fields["test_list"][0]
    spec = load_model_spec("qwen2.5-7b-instruct")
    user = build_messages(spec, spec.prompt("mbpp"), item.fields)[-1]["content"]
    assert user == (
        f"{item.fields['prompt']}\nYour code should satisfy the following assertion:\n"
        f"{item.fields['test_list'][0]}\n"
    )
    # Base mode runs test_imports + test_list (the original's scoring); plus mode adds the hub's program.
    program = code_program(item, response(item, item.fields["canonical_solution"]))
    assert program.endswith("\n".join(item.fields["test_list"])) and "inputs = " not in program


@pytest.mark.parametrize("mode", ["base", "plus"])
def test_hub_mbpp_canonical_pass_wrong_fail(mbpp_hub, mode):
    options = CodeOptions(mbpp_mode=mode)
    right = [response(i, i.fields["canonical_solution"]) for i in mbpp_hub]
    failing = {
        i.id: r["outcome"]
        for i, r in zip(mbpp_hub, score_code(mbpp_hub, right, options, progress=False))
        if not r["score"]
    }
    # evalplus re-implemented the ground truth of 164 and 295: their base assertions disagree with it.
    assert set(failing) <= {"Mbpp/164", "Mbpp/295"}, failing
    wrong = [
        r[: -len("```\n")]
        + f"\n_right = {i.fields['entry_point']}\n"
        + f"def {i.fields['entry_point']}(*a):\n    return ('wrong', _right(*a))\n```\n"
        for i, r in zip(mbpp_hub[:30], right[:30])
    ]
    results = score_code(mbpp_hub[:30], wrong, options, progress=False)
    # None passes; a few wrong outputs break the assertion expression itself (set() of a tuple with a list).
    assert not any(r["score"] for r in results)
    assert Counter(r["outcome"] for r in results)["failed_assertion"] >= 25


def test_release_mbpp_canonical_solutions_base_assertions(mbpp_release):
    assert len(mbpp_release) == 399
    results = score_code(
        mbpp_release, [response(i, i.fields["canonical_solution"]) for i in mbpp_release], progress=False
    )
    failing = {item.id: r["outcome"] for item, r in zip(mbpp_release, results) if r["outcome"] != "passed"}
    # evalplus re-implemented the ground truth of 164 and 295; 120, 442 and 574 need the hub's `import math`.
    assert failing == {
        "Mbpp/164": "failed_assertion",
        "Mbpp/295": "failed_assertion",
        "Mbpp/120": "undefined_name",
        "Mbpp/442": "undefined_name",
        "Mbpp/574": "undefined_name",
    }


@pytest.mark.slow
def test_release_mbpp_canonical_solutions_plus_inputs(mbpp_release):
    results = score_code(
        mbpp_release,
        [response(i, i.fields["canonical_solution"]) for i in mbpp_release],
        CodeOptions(mbpp_mode="plus"),
        progress=False,
    )
    assert Counter(r["outcome"] for r in results) == {"passed": 399}


def delete_last_closing_bracket(code: str) -> str | None:
    """Delete the last closing bracket of the code itself (not one inside a string or comment)."""
    import io
    import tokenize

    lines = code.splitlines(keepends=True)
    closers = [
        t
        for t in tokenize.generate_tokens(io.StringIO(code).readline)
        if t.type == tokenize.OP and t.string in ")]}"
    ]
    if not closers:
        return None
    row, col = closers[-1].start
    offset = sum(len(line) for line in lines[: row - 1]) + col
    return code[:offset] + code[offset + 1 :]


def rename_one_use(item) -> str | None:
    """Rename the parameter in its first use inside the body (one place only)."""
    body = item.fields["canonical_solution"]
    signature = re.search(rf"def {item.fields['entry_point']}\((.*?)\)", item.fields["prompt"], re.S)
    params = (
        [p.split(":")[0].split("=")[0].strip() for p in signature.group(1).split(",")] if signature else []
    )
    for param in params:
        match = re.search(rf"\b{re.escape(param)}\b", body) if param else None
        if match:
            return item.fields["prompt"] + body[: match.start()] + param + "_renamed" + body[match.end() :]
    return None


def test_mutated_solutions_get_the_right_outcome(humaneval_hub):
    from analysis.code_errors import paper_category

    items = humaneval_hub
    unbalanced = [(i, delete_last_closing_bracket(full_solution(i))) for i in items]
    unbalanced = [(i, c) for i, c in unbalanced if c is not None and c.startswith(i.fields["prompt"])]
    results = score_code([i for i, _ in unbalanced], [response(i, c) for i, c in unbalanced], progress=False)
    assert Counter(r["outcome"] for r in results) == {"syntax_error_unbalanced_brackets": len(unbalanced)}
    categories = Counter(paper_category(r["outcome"], r["detail"]) for r in results)
    # The paper's category reads Python's message: some deletions read "invalid syntax. Perhaps you forgot
    # a comma?" and count as Other Syntax there, as in the original notebook.
    assert categories["Bracket/Syntax"] / len(results) >= 0.8, categories
    assert set(categories) <= {"Bracket/Syntax", "Other Syntax", "Others"}

    renamed = [(i, rename_one_use(i)) for i in items]
    renamed = [(i, c) for i, c in renamed if c is not None]
    assert len(renamed) >= 140
    results = score_code([i for i, _ in renamed], [response(i, c) for i, c in renamed], progress=False)
    outcomes = Counter(r["outcome"] for r in results)
    # The renamed use can sit in a branch the tests never reach, or under a broad except: not every one fires.
    assert outcomes["undefined_name"] / len(renamed) >= 0.9, outcomes
    # The notebook's "Not Defined" needs "is not defined" in the message; an UnboundLocalError (a NameError
    # that reads "cannot access local variable") falls under Others there.
    not_defined = Counter(paper_category(r["outcome"], r["detail"]) for r in results)["Not Defined"]
    assert 0.95 * outcomes["undefined_name"] <= not_defined <= outcomes["undefined_name"]


def test_code_extraction_as_the_original_ran_it():
    from analysis.code_errors import paper_category

    assert extract_code("x\n```python\ndef f():\n    return 1\n```\ntrailing") == "def f():\n    return 1"
    assert extract_code("```\ndef f():\n    return 1\n```") == "def f():\n    return 1"
    assert extract_code("no fence here") == "no fence here"
    unclosed = "```python\ndef f():\n    return 1\n"
    assert extract_code(unclosed) == unclosed  # run as it is
    test = "def check(candidate):\n    assert candidate() == 1\n"
    item = TaskItem("HumanEval/x", "humaneval", {"prompt": "def f():\n", "test": test, "entry_point": "f"})
    # HumanEval+: "```python\n" + prompt + response; a fence that never closes is executed whole.
    result = score_code([item], ["    return 1\n"], progress=False)[0]
    assert result["outcome"] == "syntax_error_other" and "invalid syntax" in result["detail"]
    assert paper_category(result["outcome"], result["detail"]) == "Other Syntax"
    assert score_code([item], ["    return 1\n```"], progress=False)[0]["outcome"] == "passed"


def test_xsum_rouge():
    perfect = score_xsum("The council approved the new bridge.", "The council approved the new bridge.")
    assert perfect["score"] == pytest.approx(1.0)
    partial = score_xsum("council approves bridges", "The council approved the new bridge.")
    # Stemming: approves/approved and bridges/bridge match; 3 of 3 response tokens, 3 of 6 reference tokens.
    assert partial["rouge1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert partial["score"] == partial["rougeL"]


@pytest.mark.parametrize(
    ("n", "k", "seed"),
    [(1319, 1000, 1234), (500, 100, 42), (7473, 100, 1234), (164, 100, 42), (11332, 1000, 42)],
)
def test_item_selection_equals_datasets_train_test_split(n, k, seed):
    """GSM8K test (1,319 -> 1,000), a 500-item XSUM stand-in, and the search's selections: the ids equal, in
    order, those of datasets' own train_test_split(train_size=k, shuffle=True, seed=S)["train"]."""
    import datasets

    table = datasets.Dataset.from_dict({"i": list(range(n))})
    expected = table.train_test_split(train_size=k, shuffle=True, seed=seed)["train"]["i"]
    assert sample_indices(n, k, seed) == list(expected)
    assert sample_indices(164, 1000, 42) == list(range(164))  # smaller splits: whole, in order


def test_registry_selects_items_as_the_original(real_data, tmp_path):
    gsm8k_test = load_task("gsm8k", data=str(real_data / "gsm8k" / "test.jsonl.gz"))
    assert len(gsm8k_test) == 1000
    assert [i.id for i in gsm8k_test[:3]] == [f"gsm8k/{j}" for j in sample_indices(1319, 1000, 1234)[:3]]
    search = load_task("gsm8k", data=str(real_data / "gsm8k" / "train.jsonl.gz"), use="search")
    assert [i.id for i in search] == [f"gsm8k/{j}" for j in sample_indices(7473, 100, 1234)]
    xsum = tmp_path / "xsum_validation.jsonl"
    xsum.write_text(
        "".join(
            json.dumps({"document": f"d{j}", "summary": f"s{j}", "id": str(j)}) + "\n" for j in range(500)
        )
    )
    assert [i.id for i in load_task("xsum", data=str(xsum), use="search")] == [
        f"xsum/{j}" for j in sample_indices(500, 100, 42)
    ]
    assert registry().spec("xsum").selection("eval").split == "validation"
    assert registry().eval_tasks == ("gsm8k", "humaneval", "mbpp", "xsum")
    assert registry().search_tasks == ("gsm8k", "humaneval", "xsum")
    assert not set(registry().toy_tasks) & set(registry().eval_tasks)


def test_generative_cli_generates_resumes_and_rescores(tiny_models, real_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(
        "name: tiny\nhub_id: {}\nnum_layers: 8\nsupports_system_turn: true\n"
        'response_template: "<|start_header_id|>assistant<|end_header_id|>\\n\\n"\n'
        "stop_tokens: ['<|eot_id|>']\ndtype: float32\n".format(tiny_models["llama"])
    )
    data = [
        f"gsm8k={real_data / 'gsm8k' / 'test.jsonl.gz'}",
        f"humaneval={real_data / 'humaneval' / 'HumanEval.jsonl.gz'}",
    ]
    common = [
        "--model",
        str(tiny_models["llama"]),
        "--model_config",
        str(tmp_path / "tiny.yaml"),
        "--limit",
        "4",
        "--max_new_tokens",
        "8",
        "--batch_size",
        "2",
    ]
    for entry in data:
        common += ["--data", entry]
    assert generative.main(common + ["--tasks", "gsm8k,humaneval", "--output_dir", "run"]) == 0
    summary = json.loads((tmp_path / "run" / "gsm8k.json").read_text())
    assert summary["task"] == "gsm8k" and summary["n"] == 4 and summary["generated_tokens"] > 0
    records = load_jsonl(tmp_path / "run" / "humaneval.jsonl")
    assert [r["id"] for r in records] == ["HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/3"]
    assert all(
        {"prompt", "response", "finish_reason", "num_tokens", "latency_s", "score", "outcome"} <= set(r)
        for r in records
    )
    # The manifest records how the programs were isolated: bubblewrap where it is installed, else the guard.
    from eval.sandbox import isolation

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["code_sandbox"] == isolation() and isolation() in ("bwrap", "guard")
    # A run killed after two generations resumes and ends with the same records.
    generations = (tmp_path / "run" / "gsm8k.generations.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "resume").mkdir()
    (tmp_path / "resume" / "gsm8k.generations.jsonl").write_text(
        "".join(generations[:2]) + generations[2][:9]
    )
    meta = "gsm8k.generations.jsonl.meta.json"  # what produced them: resuming needs the same settings
    (tmp_path / "resume" / meta).write_text((tmp_path / "run" / meta).read_text())
    assert generative.main(common + ["--tasks", "gsm8k", "--output_dir", "resume"]) == 0

    def without_latency(path):
        return [{k: v for k, v in r.items() if k != "latency_s"} for r in load_jsonl(path)]

    assert without_latency(tmp_path / "resume" / "gsm8k.jsonl") == without_latency(
        tmp_path / "run" / "gsm8k.jsonl"
    )
    assert len(load_jsonl(tmp_path / "resume" / "gsm8k.generations.jsonl")) == 4
    # Rescoring saved responses needs no model; a perfect answer scores 1.
    gold = load_task("gsm8k", data=data[0].split("=", 1)[1], limit=4)
    responses = tmp_path / "responses.jsonl"
    responses.write_text(
        "".join(json.dumps({"id": item.id, "response": item.fields["answer"]}) + "\n" for item in gold)
    )
    assert (
        generative.main(
            [
                "--responses",
                str(responses),
                "--model_config",
                str(tmp_path / "tiny.yaml"),
                "--tasks",
                "gsm8k",
                "--limit",
                "4",
                "--data",
                data[0],
                "--output_dir",
                "rescored",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "rescored" / "gsm8k.json").read_text())["score"] == 1.0


def test_retention_table_matches_hand_computation(tmp_path):
    def write(directory, generative_scores, classification_scores):
        directory.mkdir()
        for task, score in generative_scores.items():
            (directory / f"{task}.json").write_text(json.dumps({"task": task, "score": score, "n": 10}))
        (directory / "classification.json").write_text(json.dumps({"scores": classification_scores}))

    write(tmp_path / "base", {"gsm8k": 0.8, "xsum": 0.2}, {"piqa": 0.8, "arc_easy": 0.5})
    write(tmp_path / "bi", {"gsm8k": 0.2, "xsum": 0.1}, {"piqa": 0.72, "arc_easy": 0.5})
    out = tmp_path / "table.md"
    assert (
        retention.main(
            ["--baseline", str(tmp_path / "base"), "--runs", str(tmp_path / "bi"), "--output", str(out)]
        )
        == 0
    )
    rows = list(csv_rows(out.with_suffix(".csv")))
    assert rows[0] == ["run", "piqa", "arc_easy", "gsm8k", "xsum", "classification_mean", "generative_mean"]
    values = [float(v) for v in rows[1][1:]]
    assert values == pytest.approx([0.9, 1.0, 0.25, 0.5, 0.95, 0.375])
    assert "| bi | 90.0 | 100.0 | 25.0 | 50.0 | 95.0 | 37.5 |" in out.read_text()
    assert r"\begin{tabular}" in out.with_suffix(".tex").read_text()


def csv_rows(path):
    import csv

    with open(path) as handle:
        yield from csv.reader(handle)


def test_lm_eval_runs_for_real_on_tiny_model(tiny_models, tmp_path):
    from infra.paths import REPO_ROOT

    data_dir = tmp_path / "tiny_mc"
    data_dir.mkdir()
    for split, count in (("train", 8), ("test", 10)):
        with open(data_dir / f"{split}.jsonl", "w") as handle:
            for i in range(count):
                handle.write(
                    json.dumps(
                        {
                            "question": f"What is {i} plus one?",
                            "label": i % 4,
                            "choices": [str(i + 1), str(i + 2), str(i), str(i + 3)],
                        }
                    )
                    + "\n"
                )
    tasks_dir = tmp_path / "tasks"
    tasks_dir.mkdir()
    template = (REPO_ROOT / "tests" / "fixtures" / "lm_eval_tasks" / "tiny_mc.yaml").read_text()
    (tasks_dir / "tiny_mc.yaml").write_text(template.replace("${LPR_TINY_MC_DIR}", str(data_dir)))
    out = tmp_path / "classification"
    code = classification.main(
        [
            "--model",
            str(tiny_models["llama"]),
            "--output_dir",
            str(out),
            "--tasks",
            "tiny_mc",
            "--num_fewshot",
            "2",
            "--limit",
            "0.5",
            "--include_path",
            str(tasks_dir),
            "--dtype",
            "float32",
            "--device",
            "cpu",
            "--batch_size",
            "4",
        ]
    )
    assert code == 0
    summary = json.loads((out / "classification.json").read_text())
    raw = json.loads((out / "lm_eval_results.json").read_text())
    assert summary["metric"] == {"tiny_mc": "acc"} and summary["n"] == {"tiny_mc": 5}
    assert summary["scores"]["tiny_mc"] == raw["results"]["tiny_mc"]["acc,none"]
    assert 0.0 <= summary["scores"]["tiny_mc"] <= 1.0
    assert raw["configs"]["tiny_mc"]["num_fewshot"] == 2
    assert (out / "manifest.json").is_file()
    # Per-item scores for bootstrap intervals: lm-eval's own per-sample accuracy, averaging to its score.
    items = [json.loads(line) for line in (out / "tiny_mc.jsonl").read_text().splitlines()]
    assert len(items) == 5 and all(item["score"] in (0.0, 1.0) for item in items)
    assert sum(item["score"] for item in items) / 5 == pytest.approx(summary["scores"]["tiny_mc"])
    assert "samples" not in raw


def test_lm_eval_task_index_is_local_only_when_it_defines_every_task(tmp_path):
    from infra.paths import REPO_ROOT

    tasks_dir = tmp_path / "tasks"
    tasks_dir.mkdir()
    template = (REPO_ROOT / "tests" / "fixtures" / "lm_eval_tasks" / "tiny_mc.yaml").read_text()
    (tasks_dir / "tiny_mc.yaml").write_text(template.replace("${LPR_TINY_MC_DIR}", str(tmp_path)))
    local = classification.task_manager(["tiny_mc"], str(tasks_dir))
    assert local.all_tasks == ["tiny_mc"]  # lm-eval's built-in YAMLs were not indexed
    # A built-in task asked for beside a local one: lm-eval's whole index, the local task included.
    mixed = classification.task_manager(["tiny_mc", "arc_easy"], str(tasks_dir))
    assert {"tiny_mc", "arc_easy", "hellaswag"} <= set(mixed.all_tasks)


def test_the_scorer_generates_every_task_in_one_call_with_each_tasks_records(
    tiny_models, tiny_specs, real_data, monkeypatch
):
    """The search's and the sweep's scorer sends all tasks' prompts to one generate call; its records equal
    those of one call per task (sampling seeded by item id), and each task is scored by its own scorer."""
    from eval.scoring import build_scorer, generate_and_score, prepare, task_sampling
    from infra.generation import HFBackend
    from infra.modeling import load_model, load_tokenizer

    calls = []
    generate = HFBackend.generate

    def counting_generate(self, prompts, sampling, seeds=None):
        calls.append(len(prompts))
        return generate(self, prompts, sampling, seeds)

    path, spec = str(tiny_models["llama"]), tiny_specs["llama"]
    data = [
        f"gsm8k={real_data / 'gsm8k' / 'test.jsonl.gz'}",
        f"humaneval={real_data / 'humaneval' / 'HumanEval.jsonl.gz'}",
    ]
    scorer = build_scorer(
        spec, ["gsm8k", "humaneval"], n_items=3, data=data, seed=5, max_new_tokens=6, batch_size=8
    )
    model, tokenizer = load_model(path, dtype="float32", device="cpu"), load_tokenizer(path)
    monkeypatch.setattr(HFBackend, "generate", counting_generate)
    combined = scorer(model, tokenizer)
    monkeypatch.setattr(HFBackend, "generate", generate)
    assert calls == [6] and list(combined) == ["gsm8k", "humaneval"]
    sampling = task_sampling(spec, "search", max_new_tokens=6, temperature=0.9, top_p=1.0, top_k=50)
    backend = HFBackend(model, tokenizer, batch_size=8, stop_tokens=spec.stop_tokens, progress=False)
    for task, result in combined.items():
        items = [
            load_task(task, data=entry.split("=", 1)[1], use="search", max_items=3)
            for entry in data
            if entry.startswith(task)
        ][0]
        alone = generate_and_score(
            backend, prepare(spec, tokenizer, task, items), sampling, 5, progress=False
        )
        strip = lambda records: [{k: v for k, v in r.items() if k != "latency_s"} for r in records]  # noqa: E731
        assert strip(result["items"]) == strip(alone) and len(alone) == 3
        assert ("outcome" in alone[0]) == (task == "humaneval")  # each task's own scorer
