"""Synthetic toy tasks that exercise what the paper measures, for the CPU toy study.

- ``toy_arithmetic``: single-digit three-operand arithmetic, ``(a op b) op c`` with + and -, answered step by
  step; GSM8K schema (``question``, ``answer`` ending in ``#### N``), scored like GSM8K.
- ``toy_brackets``: a Python expression of nested lists and parentheses cut before its closing brackets;
  HumanEval schema (``prompt``, ``test``, ``entry_point``), scored by running it, so an unbalanced
  completion is a syntax error in the code-error taxonomy.
- ``toy_copy``: a short "article" whose first sentence is the summary; XSUM schema, scored by ROUGE-L.
- ``toy_choice`` (classification, through lm-eval): a toy arithmetic question with four candidate answers,
  the right one chosen by log-likelihood.

Everything is a pure function of a seed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from infra.files import atomic_write_jsonl

TOY_TASKS = ("toy_arithmetic", "toy_brackets", "toy_copy")
TOY_CLASSIFICATION_TASKS = ("toy_choice",)  # lm-eval multiple choice (configs/tasks/lm_eval/toy_choice.yaml)
WORDS = (
    "river stone garden window market winter silver forest letter music bridge harbor candle paper cloud "
    "orange yellow quiet early bright small heavy gentle rapid open the a of to and in on with from near "
    "walks builds finds carries paints opens watches plants sells reads"
).split()


ARITHMETIC_OPS = "+-"  # addition and subtraction: a toy model masters them in minutes on a CPU


def arithmetic_problem(rng: random.Random) -> tuple[str, int]:
    a, b, c = (rng.randrange(10) for _ in range(3))
    op1, op2 = rng.choice(ARITHMETIC_OPS), rng.choice(ARITHMETIC_OPS)
    expression = f"({a} {op1} {b}) {op2} {c}"
    return f"What is {expression}?", int(eval(expression))  # noqa: S307 - digits and operators only


def worked_arithmetic(question: str) -> str:
    """The step-by-step answer the toy model gives in chat: ``a op b = x, then x op c = y.``"""
    expression = question.removeprefix("What is ").removesuffix("?")
    inner, rest = expression[1:].split(")", 1)
    first = int(eval(inner))  # noqa: S307
    op, c = rest.split()
    result = int(eval(f"{first} {op} {c}"))  # noqa: S307
    return f"{inner} = {first}, then {first} {op} {c} = {result}. The answer is {result}."


def _number(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return str(rng.randrange(10))
    return f"({_number(rng, depth - 1)} {rng.choice('+-*')} {_number(rng, depth - 1)})"


def _expression(rng: random.Random, depth: int) -> str:
    """A number expression, or a list of expressions: brackets of two kinds, nested."""
    if depth == 0 or rng.random() < 0.4:
        return _number(rng, min(depth, 2))
    return "[" + ", ".join(_expression(rng, depth - 1) for _ in range(rng.randint(1, 3))) + "]"


def brackets_problem(rng: random.Random) -> tuple[str, str, Any]:
    """(code up to the closing brackets, the closing brackets, the expression's value)."""
    while True:
        expression = _expression(rng, 3)
        tail = len(expression) - len(expression.rstrip(")]"))
        if tail >= 2 and len(expression) <= 48:
            return expression[:-tail], expression[-tail:], eval(expression)  # noqa: S307


def copy_problem(rng: random.Random) -> tuple[str, str]:
    sentences = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 5))).capitalize() + "."
        for _ in range(rng.randint(2, 3))
    ]
    return " ".join(sentences), sentences[0]


def task_records(task: str, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` items of ``task`` in the schema of the benchmark it stands in for."""
    rng = random.Random(f"{task}:{seed}")
    records = []
    for index in range(count):
        if task == "toy_arithmetic":
            question, answer = arithmetic_problem(rng)
            records.append({"question": question, "answer": f"#### {answer}"})
        elif task == "toy_brackets":
            prefix, closing, value = brackets_problem(rng)
            records.append(
                {
                    "task_id": f"toy_brackets/{index}",
                    "prompt": f"def f():\n    return {prefix}",
                    "canonical_solution": f"{closing}\n",
                    "test": f"def check(candidate):\n    assert candidate() == {value!r}\n",
                    "entry_point": "f",
                }
            )
        elif task == "toy_copy":
            document, summary = copy_problem(rng)
            records.append({"document": document, "summary": summary})
        else:
            raise ValueError(f"unknown toy task {task!r} (known: {', '.join(TOY_TASKS)})")
    return records


def model_answer(task: str, record: dict[str, Any]) -> str:
    """The answer the toy model is trained to give (its "own" style), assistant prefix included."""
    if task == "toy_arithmetic":
        return worked_arithmetic(record["question"])
    if task == "toy_brackets":
        return f"```python\n{record['prompt']}{record['canonical_solution']}```"
    return record["summary"]


def dataset_answer(task: str, record: dict[str, Any], rng: random.Random) -> str:
    """A correct answer written in another style: the "dataset responses" of standard SFT."""
    if task == "toy_arithmetic":
        answer = record["answer"].split("####")[1].strip()
        return rng.choice([f"Result: {answer}", f"It equals {answer}.", f"= {answer}"])
    if task == "toy_brackets":
        return (
            f"Here is the completed function:\n```python\n{record['prompt']}{record['canonical_solution']}```"
        )
    return f"In short: {record['summary']}"


def choice_records(count: int, seed: int) -> list[dict[str, Any]]:
    """Four-way multiple choice over toy arithmetic answers: the answer and three near misses."""
    rng = random.Random(f"toy_choice:{seed}")
    records = []
    for _ in range(count):
        question, answer = arithmetic_problem(rng)
        distractors = rng.sample(sorted({answer + d for d in (-10, -2, -1, 1, 2, 10)}), 3)
        choices = [answer, *distractors]
        rng.shuffle(choices)
        records.append(
            {"question": question, "choices": [str(c) for c in choices], "label": choices.index(answer)}
        )
    return records


def write_choice_task(directory: Path, count: int, seed: int) -> Path:
    """The toy classification task's items and its lm-eval YAML (paths filled in); returns the YAML folder."""
    from infra.paths import REPO_ROOT

    data = directory / "toy_choice"
    atomic_write_jsonl(data / "test.jsonl", choice_records(count, seed))
    atomic_write_jsonl(data / "train.jsonl", choice_records(20, seed + 1))
    template = (REPO_ROOT / "configs" / "tasks" / "lm_eval" / "toy_choice.yaml").read_text()
    tasks = directory / "lm_eval"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "toy_choice.yaml").write_text(template.replace("${TOY_CHOICE_DIR}", str(data.resolve())))
    return tasks


def write_task_data(directory: str | Path, count: int = 200, seed: int = 1) -> dict[str, Path]:
    """The evaluation items of each toy task (seed 1; the toy model trains on other seeds)."""
    directory = Path(directory)
    written = {
        task: atomic_write_jsonl(directory / f"{task}.jsonl", task_records(task, count, seed))
        for task in TOY_TASKS
    }
    # Training questions for the upper-bound experiment (the toy stand-in for GSM8K's train split).
    written["toy_arithmetic_train"] = atomic_write_jsonl(
        directory / "toy_arithmetic_train.jsonl", task_records("toy_arithmetic", count, seed + 1)
    )
    written["toy_choice"] = write_choice_task(directory, count, seed)
    # The arithmetic probe's items in EleutherAI/arithmetic's format, from the toy distribution.
    rng = random.Random(f"toy_probe:{seed}")
    probe = []
    for _ in range(count):
        question, answer = arithmetic_problem(rng)
        probe.append({"context": f"\n\nQ: {question}\n\nA:", "completion": f" {answer}"})
    written["toy_probe"] = atomic_write_jsonl(directory / "toy_probe.jsonl", probe)
    return written
