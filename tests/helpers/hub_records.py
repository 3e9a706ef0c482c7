"""Records in the exact schemas of the hub datasets the loaders meet on a GPU node, built from the real
items in tests/data (tests/data/README.md).

- ``evalplus/humanevalplus`` (split ``test``): ``task_id``, ``prompt``, ``canonical_solution``,
  ``entry_point``, ``test``, where ``test`` is evalplus's program: ``import numpy as np``, ``is_floats``, the
  numpy ``assertion(out, exp, atol)``, and ``check(candidate)`` looping over literal ``inputs``/``results``.
  The literal pairs come from the original HumanEval tests' ``assert candidate(...) == ...`` lines.
- ``evalplus/mbppplus`` (split ``test``): ``task_id`` (an int), ``code``, ``prompt`` (the description),
  ``source_file``, ``test_imports``, ``test_list`` (three assertions), ``test`` (the plus program in the
  same style, calling the entry point).
"""

from __future__ import annotations

import ast
import copy
import gzip
import json
from pathlib import Path
from typing import Any

HUMANEVAL_PLUS_TEST = """

import numpy as np

def is_floats(x) -> bool:
    # check if it is float; List[float]; Tuple[float]
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)):
        return all(isinstance(i, float) for i in x)
    if isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False


def assertion(out, exp, atol):
    exact_match = out == exp

    if atol == 0 and is_floats(exp):
        atol = 1e-6
    if not exact_match and atol != 0:
        np.testing.assert_allclose(out, exp, atol=atol)
    else:
        assert exact_match


def check(candidate):
    inputs = {inputs}
    results = {results}
    for i, (inp, exp) in enumerate(zip(inputs, results)):
        assertion(candidate(*inp), exp, 0)
"""

MBPP_PLUS_TEST = '''import numpy as np
{imports}

def is_floats(x) -> bool:
    """Helper function to check float values for comparison"""
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)):
        return all(isinstance(i, float) for i in x)
    if isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False

def assertion(out, exp, atol):
    exact_match = out == exp

    if atol == 0 and is_floats(exp):
        atol = 1e-6
    if not exact_match and atol != 0:
        assert np.allclose(out, exp, rtol=1e-07, atol=atol)
    else:
        assert exact_match

inputs = {inputs}
results = {results}
for i, (inp, exp) in enumerate(zip(inputs, results)):
    assertion({entry_point}(*inp), exp, 0)
'''


def _literal_pairs(test_source: str) -> list[tuple[list, Any]]:
    """``(args, expected)`` of every ``assert candidate(<literals>) == <literal>`` in a HumanEval test."""
    pairs = []
    for node in ast.walk(ast.parse(test_source)):
        if not isinstance(node, ast.Assert) or not isinstance(node.test, ast.Compare):
            continue
        compare = node.test
        if len(compare.ops) != 1 or not isinstance(compare.ops[0], ast.Eq):
            continue
        call, expected = compare.left, compare.comparators[0]
        if not (
            isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "candidate"
        ):
            continue
        try:
            args = [ast.literal_eval(arg) for arg in call.args]
            value = ast.literal_eval(expected)
        except (ValueError, SyntaxError, TypeError):
            continue
        if not call.keywords:
            pairs.append((args, value))
    return pairs


def humanevalplus_records(real_data: Path, minimum_pairs: int = 3) -> list[dict[str, Any]]:
    """Hub-schema HumanEval+ records for the HumanEval items whose tests give enough literal pairs."""
    records = []
    with gzip.open(real_data / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            pairs = _literal_pairs(item["test"])
            if len(pairs) < minimum_pairs:
                continue
            test = HUMANEVAL_PLUS_TEST.replace("{inputs}", repr([a for a, _ in pairs])).replace(
                "{results}", repr([r for _, r in pairs])
            )
            records.append(
                {
                    "task_id": item["task_id"],
                    "prompt": item["prompt"],
                    "canonical_solution": item["canonical_solution"],
                    "entry_point": item["entry_point"],
                    "test": test,
                }
            )
    return records


def mbppplus_records(real_data: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Hub-schema MBPP+ records from evalplus's release file: the description as ``prompt``, the first
    three assertions as ``test_list``, the canonical solution as ``code``, base inputs in the plus program."""
    from evalplus.data.mbpp import mbpp_deserialize_inputs

    records = []
    for line in gzip.open(real_data / "mbppplus" / "MbppPlus.jsonl.gz", "rt", encoding="utf-8"):
        item = json.loads(line)
        number = int(item["task_id"].split("/")[1])
        description = item["prompt"].strip().strip("'\"").strip()
        assertions = [a for a in item["assertion"].splitlines() if a.strip()]
        imports = ["import math"] if "math." in item["canonical_solution"] + item["assertion"] else []
        namespace: dict[str, Any] = {}
        exec("\n".join(imports) + "\n" + item["canonical_solution"], namespace)  # trusted canonical code
        function = namespace[item["entry_point"]]
        inputs = mbpp_deserialize_inputs(item["task_id"], item["base_input"])
        try:
            results = [function(*copy.deepcopy(args)) for args in inputs]
            assert eval(repr(results), {}) == results  # noqa: S307 - plain literals only (no Counter(...))
            test = MBPP_PLUS_TEST.format(
                imports=repr(imports),
                inputs=repr(inputs),
                results=repr(results),
                entry_point=item["entry_point"],
            )
            compile(test, "<test>", "exec")
        except Exception:  # noqa: BLE001 - inputs that do not survive a literal round trip are left out
            continue
        records.append(
            {
                "task_id": number,
                "code": item["canonical_solution"],
                "prompt": description,
                "source_file": "Benchmark Questions Verification V2.ipynb",
                "test_imports": imports,
                "test_list": assertions[:3],
                "test": test,
            }
        )
        if limit is not None and len(records) >= limit:
            break
    return records


def arithmetic_records(n: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Items in the schema of the hub's ``EleutherAI/arithmetic`` config ``arithmetic_1dc``
    (:func:`infra.study_models.toy_tasks.arithmetic_1dc_records`, which the real-model study writes as its probe data)."""
    from infra.study_models.toy_tasks import arithmetic_1dc_records

    return arithmetic_1dc_records(n, seed)
