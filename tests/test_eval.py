from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from eval import classification, generative, retention
from eval.scorers import CodeOptions, extract_code, score_code, score_gsm8k, score_xsum
from eval.tasks import load_task, sample_indices
from infra.files import load_jsonl

SOLUTION_KEYS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def test_gsm8k_scorer_agrees_with_labels_and_gold(shared_data):
    gold = {
        json.loads(line)["question"]: json.loads(line)["answer"]
        for line in (shared_data / "gsm8k" / "test.jsonl").open()
    }
    agree = total = 0
    for record in load_jsonl(shared_data / "gsm8k" / "example_model_solutions.jsonl"):
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


def fenced(code: str) -> str:
    return f"Here is the final answer:\n\n```python\n{code}```\n"


@pytest.fixture(scope="module")
def humaneval(shared_data):
    return load_task("humaneval", data=str(shared_data / "humaneval" / "HumanEval.jsonl.gz"))


@pytest.fixture(scope="module")
def mbpp(shared_data):
    return load_task("mbpp", data=str(shared_data / "mbppplus" / "MbppPlus.jsonl"))


def full_solution(item) -> str:
    return item.fields["prompt"] + item.fields["canonical_solution"]


def test_humaneval_canonical_solutions_pass(humaneval):
    assert len(humaneval) == 164 and humaneval[0].id == "HumanEval/0"
    results = score_code(humaneval, [fenced(full_solution(i)) for i in humaneval], progress=False)
    assert Counter(r["outcome"] for r in results) == {"passed": 164}


def test_mbpp_canonical_solutions_base_assertions(mbpp):
    assert len(mbpp) == 399
    results = score_code(mbpp, [fenced(i.fields["canonical_solution"]) for i in mbpp], progress=False)
    failing = {item.id: r["outcome"] for item, r in zip(mbpp, results) if r["outcome"] != "passed"}
    # evalplus re-implemented the ground truth of 164 and 295; 120, 442 and 574 need the hub's `import math`.
    assert failing == {
        "Mbpp/164": "failed_assertion",
        "Mbpp/295": "failed_assertion",
        "Mbpp/120": "undefined_name",
        "Mbpp/442": "undefined_name",
        "Mbpp/574": "undefined_name",
    }
    with_imports = [i for i in mbpp if i.id in ("Mbpp/120", "Mbpp/442", "Mbpp/574")]
    for item in with_imports:
        item.fields["test_imports"] = ["import math"]
    again = score_code(
        with_imports, [fenced(i.fields["canonical_solution"]) for i in with_imports], progress=False
    )
    assert [r["outcome"] for r in again] == ["passed"] * 3


@pytest.mark.slow
def test_mbpp_canonical_solutions_plus_inputs(mbpp):
    results = score_code(
        mbpp,
        [fenced(i.fields["canonical_solution"]) for i in mbpp],
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


def test_mutated_solutions_get_the_right_outcome(humaneval):
    unbalanced = [(i, delete_last_closing_bracket(full_solution(i))) for i in humaneval]
    unbalanced = [(i, c) for i, c in unbalanced if c is not None]
    results = score_code([i for i, _ in unbalanced], [fenced(c) for _, c in unbalanced], progress=False)
    assert Counter(r["outcome"] for r in results) == {"syntax_error_unbalanced_brackets": len(unbalanced)}

    renamed = [(i, rename_one_use(i)) for i in humaneval]
    renamed = [(i, c) for i, c in renamed if c is not None]
    assert len(renamed) >= 150
    outcomes = Counter(
        r["outcome"]
        for r in score_code([i for i, _ in renamed], [fenced(c) for _, c in renamed], progress=False)
    )
    # The renamed use can sit in a branch the tests never reach, or under a broad except: not every one fires.
    assert outcomes["undefined_name"] / len(renamed) >= 0.93, outcomes
    assert outcomes["undefined_name"] == max(outcomes.values())

    # A changed constant: every function returns something else (its result plus a marker object).
    changed = [
        full_solution(i).replace(
            f"def {i.fields['entry_point']}(", f"def _orig_{i.fields['entry_point']}(", 1
        )
        + f"\n\ndef {i.fields['entry_point']}(*a, **k):\n    return ('changed', _orig_{i.fields['entry_point']}(*a, **k))\n"
        for i in humaneval
    ]
    outcomes = Counter(
        r["outcome"] for r in score_code(humaneval, [fenced(c) for c in changed], progress=False)
    )
    assert outcomes["failed_assertion"] / len(humaneval) >= 0.97, outcomes


def test_code_extraction():
    assert extract_code("x\n```python\ndef f():\n    return 1\n```\ntrailing") == "def f():\n    return 1\n"
    assert extract_code("```python\ndef f():\n    return 1\n") is None  # never closed: malformed
    assert extract_code("no code here") is None
    item = load_task.__globals__["TaskItem"]("HumanEval/x", "humaneval", {"test": "", "entry_point": "f"})
    assert score_code([item], ["```python\ndef f(:"], progress=False)[0]["outcome"] == "no_code"


def test_xsum_rouge():
    perfect = score_xsum("The council approved the new bridge.", "The council approved the new bridge.")
    assert perfect["score"] == pytest.approx(1.0)
    partial = score_xsum("council approves bridges", "The council approved the new bridge.")
    # Stemming: approves/approved and bridges/bridge match; 3 of 3 response tokens, 3 of 6 reference tokens.
    assert partial["rouge1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert partial["score"] == partial["rougeL"]


def test_sampling_matches_datasets_shuffle():
    datasets = pytest.importorskip("datasets")
    table = datasets.Dataset.from_dict({"i": list(range(1319))})
    expected = table.shuffle(seed=1234).select(range(1000))["i"]
    assert sample_indices(1319, 1000, 1234) == list(expected)
    assert sample_indices(164, 1000, None) == list(range(164))


def test_generative_cli_generates_resumes_and_rescores(tiny_models, shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(
        "name: tiny\nhub_id: {}\nnum_layers: 8\nsupports_system_turn: true\n"
        'response_template: "<|start_header_id|>assistant<|end_header_id|>\\n\\n"\n'
        "stop_tokens: ['<|eot_id|>']\ndtype: float32\n".format(tiny_models["llama"])
    )
    data = [
        f"gsm8k={shared_data / 'gsm8k' / 'test.jsonl'}",
        f"humaneval={shared_data / 'humaneval' / 'HumanEval.jsonl.gz'}",
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
