"""Synthetic toy tasks that exercise what the paper measures, for the CPU toy study.

- ``toy_arithmetic``: single-digit three-operand arithmetic, ``(a op b) op c`` with + and - and every
  number a digit, answered step by step; GSM8K schema (``question``, ``answer`` ending in ``#### N``),
  scored like GSM8K.
- ``toy_brackets``: a Python expression of nested lists and parentheses cut before its closing brackets;
  HumanEval schema (``prompt``, ``test``, ``entry_point``), scored by running it, so an unbalanced
  completion is a syntax error in the code-error taxonomy.
- ``toy_copy``: a short "article" whose first sentence is the summary; XSUM schema, scored by ROUGE-L.
- ``toy_choice`` (classification, through lm-eval): the ``toy_copy`` prompt with four candidate summaries
  (the article's first sentence, its other sentences, sentences from elsewhere), the right one chosen by
  log-likelihood: the summary is recognised among choices instead of written out, as the paper's
  classification benchmarks recognise an answer.

Everything is a pure function of a seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.files import atomic_write_jsonl

TOY_TASKS = ("toy_arithmetic", "toy_brackets", "toy_copy")
WORDS = (
    "river stone garden window market winter silver forest letter music bridge harbor candle paper cloud "
    "orange yellow quiet early bright small heavy gentle rapid open the a of to and in on with from near "
    "walks builds finds carries paints opens watches plants sells reads"
).split()


ARITHMETIC_OPS = "+-"  # addition and subtraction: a toy model masters them in minutes on a CPU


def arithmetic_problem(rng: random.Random) -> tuple[str, int]:
    """``(a op b) op c`` in which every number, the intermediate result and the answer included, is a
    single digit: two steps, each a fact of the digit tables, the step-by-step shape of GSM8K's answers."""
    while True:
        a, b, c = (rng.randrange(10) for _ in range(3))
        op1, op2 = rng.choice(ARITHMETIC_OPS), rng.choice(ARITHMETIC_OPS)
        first = a + b if op1 == "+" else a - b
        result = first + c if op2 == "+" else first - c
        if 0 <= first <= 9 and 0 <= result <= 9:
            return f"What is ({a} {op1} {b}) {op2} {c}?", result


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


def arithmetic_1dc_records(count: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Items in the schema and form of the hub's ``EleutherAI/arithmetic`` config ``arithmetic_1dc`` (GPT-3's
    single-digit three-operation problems, the arithmetic probe's default data): ``{"context": "\\n\\nQ: What
    is (9 + 8) * 2?\\n\\nA:", "completion": " 34"}``, from a seeded generator (the upstream file carries no
    license to ship it, and offline runs cannot reach the hub)."""
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        a, b, c = (rng.randrange(10) for _ in range(3))
        first, second = rng.choice("+-*"), rng.choice("+-*")
        value = eval(f"({a} {first} {b}) {second} {c}")  # noqa: S307 - digits and operators made here
        records.append(
            {"context": f"\n\nQ: What is ({a} {first} {b}) {second} {c}?\n\nA:", "completion": f" {value}"}
        )
    return records


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
    """Four-way multiple choice over toy articles: the summary (the first sentence), the article's other
    sentences, and sentences of other articles to make four."""
    rng = random.Random(f"toy_choice:{seed}")
    records = []
    while len(records) < count:
        document, summary = copy_problem(rng)
        others = [s if s.endswith(".") else s + "." for s in document.split(". ")][1:]
        while len(others) < 3:
            others.append(copy_problem(rng)[1])
        choices = [summary, *others[:3]]
        if len(set(choices)) < 4:  # a repeated sentence would make two answers right
            continue
        rng.shuffle(choices)
        records.append({"document": document, "choices": choices, "label": choices.index(summary)})
    return records


def write_choice_task(
    directory: Path, render: Callable[[dict[str, Any]], str], count: int, seed: int
) -> Path:
    """The toy classification task's items, each with its ``prompt`` (``render``: an item to the text the
    model continues, the chat-rendered ``toy_copy`` prompt), and its lm-eval YAML with the data path filled
    in; returns the YAML's folder."""
    from infra.paths import REPO_ROOT

    data = directory / "toy_choice"
    atomic_write_jsonl(data / "test.jsonl", [{**r, "prompt": render(r)} for r in choice_records(count, seed)])
    template = (REPO_ROOT / "configs" / "tasks" / "lm_eval" / "toy_choice.yaml").read_text()
    tasks = directory / "lm_eval"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "toy_choice.yaml").write_text(template.replace("${TOY_CHOICE_DIR}", str(data.resolve())))
    return tasks


def write_task_data(
    directory: str | Path,
    render: Callable[[dict[str, Any]], str] | None = None,
    count: int = 200,
    seed: int = 1,
) -> dict[str, Path]:
    """The evaluation items of each toy task (seed 1; the toy model trains on other seeds); the
    classification task too when ``render`` (see :func:`write_choice_task`) is given."""
    directory = Path(directory)
    written = {
        task: atomic_write_jsonl(directory / f"{task}.jsonl", task_records(task, count, seed))
        for task in TOY_TASKS
    }
    # Training questions for the upper-bound experiment (the toy stand-in for GSM8K's train split).
    written["toy_arithmetic_train"] = atomic_write_jsonl(
        directory / "toy_arithmetic_train.jsonl", task_records("toy_arithmetic", count, seed + 1)
    )
    if render is not None:
        written["toy_choice"] = write_choice_task(directory, render, count, seed)
    # The arithmetic probe's items in EleutherAI/arithmetic's format, from the toy distribution.
    rng = random.Random(f"toy_probe:{seed}")
    probe = []
    for _ in range(count):
        question, answer = arithmetic_problem(rng)
        probe.append({"context": f"\n\nQ: {question}\n\nA:", "completion": f" {answer}"})
    written["toy_probe"] = atomic_write_jsonl(directory / "toy_probe.jsonl", probe)
    return written
