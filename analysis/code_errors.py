"""Code-error taxonomy (paper Figures 4 and 8): how generated programs fail, from the eval item files.

    python -m analysis.code_errors --items outputs/llama/base/eval/humaneval.jsonl \\
        --items outputs/llama/pruned/bi-25pct/eval/humaneval.jsonl --output code_errors.json

Outcomes are the sandbox's: passed, failed_assertion, timeout, syntax_error_unbalanced_brackets,
syntax_error_other, undefined_name, runtime_error, no_code.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, parse_cli
from infra.files import RecordError, atomic_write_json, load_jsonl

OUTCOMES = (
    "passed",
    "failed_assertion",
    "runtime_error",
    "undefined_name",
    "syntax_error_unbalanced_brackets",
    "syntax_error_other",
    "timeout",
    "no_code",
)
OUTCOME_LABELS = {
    "passed": "Passed",
    "failed_assertion": "Wrong answer",
    "runtime_error": "Runtime error",
    "undefined_name": "Undefined name",
    "syntax_error_unbalanced_brackets": "Unbalanced brackets",
    "syntax_error_other": "Other syntax error",
    "timeout": "Timeout",
    "no_code": "No code",
}


def outcome_counts(records: list[dict[str, Any]], where: str = "items") -> Counter:
    counts: Counter = Counter()
    for number, record in enumerate(records, start=1):
        outcome = record.get("outcome")
        if outcome not in OUTCOMES:
            raise ConfigError(
                f"{where}:{number}: no code outcome (got {outcome!r}; known: {', '.join(OUTCOMES)})"
            )
        counts[outcome] += 1
    return counts


def outcome_distribution(records: list[dict[str, Any]], where: str = "items") -> dict[str, float]:
    """Fraction of items per outcome, every outcome present (zeros included), in :data:`OUTCOMES` order."""
    counts = outcome_counts(records, where)
    total = sum(counts.values())
    return {outcome: (counts[outcome] / total if total else 0.0) for outcome in OUTCOMES}


def distribution_of_files(paths: list[Path]) -> dict[str, float]:
    """Pooled over several item files (e.g. HumanEval+ and MBPP+)."""
    records: list[dict[str, Any]] = []
    for path in paths:
        try:
            loaded = load_jsonl(path)
        except RecordError as error:
            raise ConfigError(str(error)) from None
        outcome_counts(loaded, str(path))
        records.extend(loaded)
    return outcome_distribution(records)


@dataclass
class CodeErrorArgs:
    items: list[str] = field(metadata={"help": "code item JSONL files (repeat the flag)"})
    output: str


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(CodeErrorArgs, argv, doc=__doc__)
    try:
        result = {path: distribution_of_files([Path(path)]) for path in args.items}
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    atomic_write_json(args.output, result)
    for path, distribution in result.items():
        shown = ", ".join(f"{OUTCOME_LABELS[o]} {100 * v:.1f}%" for o, v in distribution.items() if v)
        print(f"[code_errors] {Path(path).name}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
