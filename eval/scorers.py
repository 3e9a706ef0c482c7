"""Scoring of one response per task: GSM8K with math-verify, code by execution, XSUM with ROUGE."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from eval.sandbox import ExecutionJob, execute_many
from eval.tasks import TaskItem, is_code_task, task_kind


def score_gsm8k(response: str, answer: str) -> dict[str, Any]:
    """1.0 when math-verify matches the response with the dataset's answer, as the original code called it:
    ``verify(parse(response), parse(answer))`` on GSM8K's whole answer text (worked solution, ``#### N``)."""
    from math_verify import parse, verify

    predicted = parse(response)
    correct = bool(predicted) and bool(verify(predicted, parse(answer)))
    extracted = str(predicted[-1]) if predicted else None
    return {"score": 1.0 if correct else 0.0, "extracted": extracted}


@functools.lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def score_xsum(response: str, summary: str) -> dict[str, Any]:
    """ROUGE-1/2/L F1 with stemming; ROUGE-L is the task score."""
    scores = _rouge().score(summary, response)
    values = {name: scores[name].fmeasure for name in ("rouge1", "rouge2", "rougeL")}
    return {"score": values["rougeL"], **values}


PYTHON_FENCE = re.compile(r"```python(.+?)```", re.S)
ANY_FENCE = re.compile(r"```(.+?)```", re.S)


def extract_code(text: str) -> str:
    """The code the original harness ran: the first ```python block (stripped), else the first fenced
    block, else the whole text (a response whose fence never closes runs as it is, usually a syntax error)."""
    for fence in (PYTHON_FENCE, ANY_FENCE):
        match = fence.search(text)
        if match:
            return match.group(1).strip()
    return text


@dataclass
class CodeOptions:
    # "base": the original scoring (HumanEval+ `test` + check; MBPP+ `test_imports` + `test_list`);
    # "plus": MBPP+ against its plus tests too (the hub's `test` program, or evalplus's plus inputs).
    mbpp_mode: str = "base"
    timeout_s: float = 30.0  # the original code's per-program limit
    plus_timeout_s: float = 120.0  # evalplus plus inputs run the reference solution too
    workers: int | None = None
    memory_bytes: int = 4 << 30


def code_program(item: TaskItem, response: str) -> str:
    """The program the original harness executed for one response (code, then the task's tests)."""
    fields = item.fields
    if task_kind(item.task) == "humaneval":
        code = extract_code("```python\n" + fields["prompt"] + response)
        return f"{code.strip()}\n{fields['test']}\ncheck({fields['entry_point']})"
    text = response if "```python" in response else "```python\n" + response
    code = "\n".join(fields.get("test_imports") or []) + "\n\n" + extract_code(text)
    return f"{code.strip()}\n" + "\n".join(fields["test_list"])


def code_job(item: TaskItem, response: str, options: CodeOptions) -> ExecutionJob:
    fields = item.fields
    if task_kind(item.task) == "mbpp" and options.mbpp_mode == "plus":
        if fields.get("test"):  # the hub's plus program: base assertions, then the plus inputs
            return ExecutionJob(
                code=f"{code_program(item, response)}\n{fields['test']}",
                timeout_s=options.plus_timeout_s,
                memory_bytes=options.memory_bytes,
            )
        from evalplus.data.mbpp import mbpp_deserialize_inputs

        if fields.get("base_input") is None:
            raise ValueError(
                f"{item.id}: plus mode needs the hub's 'test' or evalplus's base_input/plus_input"
            )
        text = response if "```python" in response else "```python\n" + response
        inputs = mbpp_deserialize_inputs(
            item.id, list(fields["base_input"]) + list(fields["plus_input"] or [])
        )
        return ExecutionJob(
            code="\n".join(fields.get("test_imports") or []) + "\n\n" + extract_code(text),
            entry_point=fields["entry_point"],
            inputs=inputs,
            reference=fields["canonical_solution"],
            atol=fields["atol"],
            oracle=_mbpp_oracle(fields["entry_point"]),
            timeout_s=options.plus_timeout_s,
            memory_bytes=options.memory_bytes,
        )
    return ExecutionJob(
        code=code_program(item, response), timeout_s=options.timeout_s, memory_bytes=options.memory_bytes
    )


def _mbpp_oracle(entry_point: str) -> str | None:
    """evalplus's special output oracles for MBPP+ (from its own task lists)."""
    from evalplus.eval import MBPP_OUTPUT_NOT_NONE_TASKS, MBPP_OUTPUT_SET_EQ_TASKS

    if entry_point == "are_equivalent":
        return "always"
    if entry_point == "sum_div":
        return "zero_ok"
    if entry_point in MBPP_OUTPUT_SET_EQ_TASKS:
        return "set"
    if entry_point in MBPP_OUTPUT_NOT_NONE_TASKS:
        return "not_none"
    return None


def score_code(
    items: list[TaskItem], responses: list[str], options: CodeOptions | None = None, progress: bool = True
) -> list[dict[str, Any]]:
    """Execute each response against its item's tests in the sandbox."""
    options = options or CodeOptions()
    jobs = [code_job(item, response, options) for item, response in zip(items, responses)]
    results = execute_many(jobs, workers=options.workers, progress=progress)
    return [
        {"score": 1.0 if result.passed else 0.0, "outcome": result.outcome, "detail": result.detail}
        for result in results
    ]


def score_responses(
    task: str,
    items: list[TaskItem],
    responses: list[str],
    code_options: CodeOptions | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Per-item scores for one task (responses are the model's text after the assistant prefix)."""
    kind = task_kind(task)
    if kind == "math":
        return [score_gsm8k(r, item.fields["answer"]) for item, r in zip(items, responses)]
    if kind == "summary":
        return [score_xsum(r, item.fields["summary"]) for item, r in zip(items, responses)]
    if is_code_task(task):
        return score_code(items, responses, code_options, progress=progress)
    raise ValueError(f"no scorer for task {task!r}")
