"""Code-error taxonomy (paper Figures 4 and 8): how generated programs fail, from the eval item files.

    python -m analysis.code_errors --items outputs/llama/base/eval/humaneval.jsonl \\
        --items outputs/llama/pruned/bi-25pct/eval/humaneval.jsonl --output code_errors.json

Item files keep the sandbox's finer outcomes (passed, failed_assertion, timeout,
syntax_error_unbalanced_brackets, syntax_error_other, undefined_name, runtime_error) and the error text. The
paper's figures use the categories of the original analysis notebook, read from the error text as it did
(:func:`paper_category`): Passed; Assertion Error (an assertion without a message); Bracket/Syntax (a
syntax error about unbalanced or unclosed brackets); Other Syntax ("invalid syntax"); Not Defined
(NameError); Timeout (including maximum recursion depth); Others (the rest: runtime errors, assertions with a
message such as numpy's tolerance checks, other syntax errors).
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, parse_cli, report_error
from infra.files import RecordError, atomic_write_json, load_jsonl

PAPER_CATEGORIES = (
    "Passed",
    "Assertion Error",
    "Bracket/Syntax",
    "Other Syntax",
    "Not Defined",
    "Timeout",
    "Others",
)
INVALID_CODE = ("Bracket/Syntax", "Other Syntax", "Not Defined")  # Figure 4's categories
BRACKET_KEYWORDS = (
    "was never closed",
    "opening parenthesis",
    "unmatched ')'",
    "unmatched '}'",
    "unmatched ']'",
)


def paper_category(outcome: str, detail: str) -> str:
    """The original notebook's category of one program, from its outcome and error text.

    The original harness recorded ``"failed: " + str(error)``; the sandbox records ``"<Type>: <error>"``, so
    the message is the text after the first ``": "``."""
    if outcome == "passed":
        return "Passed"
    if outcome == "timeout" or "depth exceeded" in detail:
        message = "timed out"
    else:
        message = detail.split(": ", 1)[1] if ": " in detail else detail
    if outcome == "failed_assertion" and detail.startswith("AssertionError") and not message.strip():
        return "Assertion Error"
    if any(keyword in message for keyword in BRACKET_KEYWORDS):
        return "Bracket/Syntax"
    if "invalid syntax" in message:
        return "Other Syntax"
    if "is not defined" in message:
        return "Not Defined"
    if "timed out" in message or "depth exceeded" in message:
        return "Timeout"
    return "Others"


def category_shares(records: list[dict[str, Any]], *, failed_only: bool = False) -> dict[str, float]:
    """Share of programs per paper category (of the failed ones with ``failed_only``), in order."""
    counts = Counter(paper_category(r.get("outcome", ""), str(r.get("detail", ""))) for r in records)
    if failed_only:
        counts.pop("Passed", None)
    total = sum(counts.values())
    names = [c for c in PAPER_CATEGORIES if not (failed_only and c == "Passed")]
    return {name: (counts[name] / total if total else 0.0) for name in names}


OUTCOMES = (
    "passed",
    "failed_assertion",
    "runtime_error",
    "undefined_name",
    "syntax_error_unbalanced_brackets",
    "syntax_error_other",
    "timeout",
)
OUTCOME_LABELS = {
    "passed": "Passed",
    "failed_assertion": "Wrong answer",
    "runtime_error": "Runtime error",
    "undefined_name": "Undefined name",
    "syntax_error_unbalanced_brackets": "Unbalanced brackets",
    "syntax_error_other": "Other syntax error",
    "timeout": "Timeout",
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


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        records = load_jsonl(path)
    except RecordError as error:
        raise ConfigError(str(error)) from None
    outcome_counts(records, str(path))
    return records


def records_of_files(paths: list[Path]) -> list[dict[str, Any]]:
    """The code items of several files pooled (e.g. HumanEval+ and MBPP+)."""
    return [record for path in paths for record in _load(path)]


@dataclass
class CodeErrorArgs:
    items: list[str] = field(metadata={"help": "code item JSONL files (repeat the flag)"})
    output: str


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(CodeErrorArgs, argv, doc=__doc__)
    try:
        result = {}
        for path in args.items:
            records = _load(Path(path))
            result[path] = {
                "outcomes": outcome_distribution(records, path),
                "paper_categories": category_shares(records),
                "paper_categories_of_failed": category_shares(records, failed_only=True),
                "n": len(records),
            }
    except (ConfigError, FileNotFoundError) as error:
        return report_error(error)
    atomic_write_json(args.output, result)
    for path, entry in result.items():
        shown = ", ".join(f"{c} {100 * v:.1f}%" for c, v in entry["paper_categories"].items() if v)
        print(f"[code_errors] {Path(path).name}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
