"""Scoring of one response per task: GSM8K with math-verify, code by execution, XSUM with ROUGE."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from eval.sandbox import ExecutionJob, execute_many
from eval.tasks import TaskItem, is_code_task, task_kind

FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)```", re.S)


def gsm8k_gold(answer: str) -> str:
    return answer.split("####")[-1].strip().replace(",", "")


def score_gsm8k(response: str, answer: str) -> dict[str, Any]:
    """1.0 when math-verify finds the gold number in the response; also the extracted answer."""
    from math_verify import parse, verify

    gold = parse(gsm8k_gold(answer))
    # GSM8K's own answer format ("#### 18") is explicit; otherwise math-verify finds the answer (\boxed, last
    # number, "the answer is ...").
    predicted = parse(response.split("####")[-1]) if "####" in response else []
    if not predicted:
        predicted = parse(response)
    correct = bool(predicted) and bool(verify(gold, predicted))
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


def extract_code(text: str) -> str | None:
    """The first fenced Python block of ``text`` (prefix included); None when there is no closed block."""
    match = FENCE.search(text)
    return match.group(1) if match else None


@dataclass
class CodeOptions:
    mbpp_mode: str = "base"  # "base": the original code's assertions; "plus": evalplus base + plus inputs
    timeout_s: float = 10.0
    plus_timeout_s: float = 120.0  # plus inputs run the reference solution too; some take ~30 s each
    workers: int | None = None
    memory_bytes: int = 4 << 30


def code_job(item: TaskItem, code: str, options: CodeOptions) -> ExecutionJob:
    fields = item.fields
    if task_kind(item.task) == "humaneval":
        return ExecutionJob(
            code=code,
            test=f"{fields['test']}\ncheck({fields['entry_point']})\n",
            timeout_s=options.timeout_s,
            memory_bytes=options.memory_bytes,
        )
    if options.mbpp_mode == "plus":
        from evalplus.data.mbpp import mbpp_deserialize_inputs

        if fields.get("base_input") is None:
            raise ValueError(f"{item.id}: plus mode needs evalplus's base_input/plus_input fields")
        inputs = mbpp_deserialize_inputs(
            item.id, list(fields["base_input"]) + list(fields["plus_input"] or [])
        )
        return ExecutionJob(
            code=code,
            entry_point=fields["entry_point"],
            inputs=inputs,
            reference=fields["canonical_solution"],
            atol=fields["atol"],
            oracle=_mbpp_oracle(fields["entry_point"]),
            timeout_s=options.plus_timeout_s,
            memory_bytes=options.memory_bytes,
        )
    imports = "\n".join(fields.get("test_imports") or [])
    return ExecutionJob(
        code=code,
        test=f"{imports}\n{fields['assertion']}\n",
        timeout_s=options.timeout_s,
        memory_bytes=options.memory_bytes,
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
    items: list[TaskItem], texts: list[str], options: CodeOptions | None = None, progress: bool = True
) -> list[dict[str, Any]]:
    """Execute each text's code against its item's tests; ``texts`` include the assistant prefix."""
    options = options or CodeOptions()
    results: list[dict[str, Any] | None] = [None] * len(items)
    jobs, positions = [], []
    for position, (item, text) in enumerate(zip(items, texts)):
        code = extract_code(text)
        if code is None or not code.strip():
            results[position] = {"score": 0.0, "outcome": "no_code", "detail": "no closed ```python block"}
            continue
        jobs.append(code_job(item, code, options))
        positions.append(position)
    for position, result in zip(positions, execute_many(jobs, workers=options.workers, progress=progress)):
        results[position] = {
            "score": 1.0 if result.passed else 0.0,
            "outcome": result.outcome,
            "detail": result.detail,
        }
    return results  # type: ignore[return-value]


def score_responses(
    task: str,
    items: list[TaskItem],
    responses: list[str],
    prefixes: list[str] | None = None,
    code_options: CodeOptions | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Per-item scores for one task; ``prefixes`` are the assistant prefixes the responses continue."""
    prefixes = prefixes or [""] * len(items)
    kind = task_kind(task)
    if kind == "math":
        return [score_gsm8k(r, item.fields["answer"]) for item, r in zip(items, responses)]
    if kind == "summary":
        return [score_xsum(r, item.fields["summary"]) for item, r in zip(items, responses)]
    if is_code_task(task):
        texts = [p + r for p, r in zip(prefixes, responses)]
        return score_code(items, texts, code_options, progress=progress)
    raise ValueError(f"no scorer for task {task!r}")
