"""Text degeneration of generated responses (paper Figures 2 and 9).

    python -m analysis.degeneration --items outputs/llama/sweep/layer_007.gsm8k.jsonl \\
        --baseline outputs/llama/sweep/baseline.gsm8k.jsonl --output outputs/llama/degeneration/layer_007.json
    python -m analysis.degeneration --items a.jsonl --items b.jsonl --output degeneration.json

Per response: rep-n for n = 2, 3, 4 (1 - unique n-grams / all n-grams), intra-response Self-BLEU-4 (each
sentence scored against the response's other sentences with NLTK's sentence BLEU-4, smoothing method 1),
and the generated length. Per file: the means over the responses where a measure is defined (rep-n needs at
least n words, Self-BLEU at least two sentences) and, with ``--baseline``, each mean divided by the
baseline's (the unpruned model's) mean.

Words are ``\\w+`` runs and single punctuation marks; sentences end at ``.``, ``!`` or ``?`` followed by
white space, or at a line break. Self-BLEU is computed in one pass over the n-grams of a response (the top
two counts of every n-gram give the clipping count against "all other sentences"), which gives NLTK's
values exactly without its quadratic re-counting.
"""

from __future__ import annotations

import math
import re
import sys
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, parse_cli
from infra.files import RecordError, atomic_write_json, load_jsonl

WORD = re.compile(r"\w+|[^\w\s]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
REP_NS = (2, 3, 4)
BLEU_EPSILON = 0.1  # NLTK SmoothingFunction.method1


def words(text: str) -> list[str]:
    return WORD.findall(text)


def sentences(text: str) -> list[list[str]]:
    """Tokenized sentences; those without a word are dropped."""
    return [tokens for part in SENTENCE_END.split(text) if (tokens := words(part))]


def ngram_list(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(tokens[i:] for i in range(n))))


def rep_n(tokens: list[str], n: int) -> float | None:
    """1 - unique/total n-grams; ``None`` when the response has fewer than n words."""
    grams = ngram_list(tokens, n)
    if not grams:
        return None
    return 1.0 - len(set(grams)) / len(grams)


def self_bleu(sentence_tokens: list[list[str]], max_n: int = 4) -> float | None:
    """Mean sentence BLEU-``max_n`` of each sentence against all the others; ``None`` below two sentences."""
    k = len(sentence_tokens)
    if k < 2:
        return None
    lengths = [len(s) for s in sentence_tokens]
    sorted_lengths = sorted(lengths)
    # Per order n: each sentence's counts, and per n-gram the two largest counts with the first one's owner.
    counts_by_n = []
    for n in range(1, max_n + 1):
        per_sentence = [Counter(ngram_list(s, n)) for s in sentence_tokens]
        top: dict[tuple, list] = {}
        for owner, counts in enumerate(per_sentence):
            for gram, count in counts.items():
                entry = top.get(gram)
                if entry is None:
                    top[gram] = [count, owner, 0]
                elif count > entry[0]:
                    entry[2], entry[0], entry[1] = entry[0], count, owner
                elif count > entry[2]:
                    entry[2] = count
        counts_by_n.append((per_sentence, top))
    scores = []
    for j in range(k):
        hyp_len = lengths[j]
        log_sum, unigram_matches = 0.0, 0
        for n, (per_sentence, top) in enumerate(counts_by_n, start=1):
            numerator = 0
            for gram, count in per_sentence[j].items():
                best, owner, second = top[gram]
                numerator += min(count, second if owner == j else best)
            denominator = max(1, sum(per_sentence[j].values()))
            if n == 1:
                unigram_matches = numerator
            precision = (numerator if numerator else BLEU_EPSILON) / denominator
            log_sum += math.log(precision) / max_n
        if unigram_matches == 0:
            scores.append(0.0)
            continue
        closest = _closest_other_length(sorted_lengths, hyp_len)
        if hyp_len > closest:
            penalty = 1.0
        elif hyp_len == 0:
            penalty = 0.0
        else:
            penalty = math.exp(1 - closest / hyp_len)
        scores.append(penalty * math.exp(log_sum))
    return sum(scores) / k


def _closest_other_length(sorted_lengths: list[int], hyp_len: int) -> int:
    """NLTK's closest reference length (ties to the shorter) among the other sentences' lengths."""
    position = bisect_left(sorted_lengths, hyp_len)
    others = sorted_lengths[:position] + sorted_lengths[position + 1 :]  # drop one copy of hyp_len itself
    candidates = []
    i = bisect_left(others, hyp_len)
    if i < len(others):
        candidates.append(others[i])
    if i > 0:
        candidates.append(others[i - 1])
    return min(candidates, key=lambda length: (abs(length - hyp_len), length))


def response_metrics(text: str, num_tokens: int | None = None) -> dict[str, float | None]:
    tokens = words(text)
    metrics: dict[str, float | None] = {f"rep_{n}": rep_n(tokens, n) for n in REP_NS}
    metrics["self_bleu_4"] = self_bleu(sentences(text))
    metrics["length"] = float(num_tokens if num_tokens is not None else len(tokens))
    return metrics


METRICS = (*(f"rep_{n}" for n in REP_NS), "self_bleu_4", "length")


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the responses where each measure is defined, and how many that was."""
    per_response = [response_metrics(r.get("response", ""), r.get("num_tokens")) for r in records]
    summary: dict[str, Any] = {"n": len(records)}
    for metric in METRICS:
        values = [m[metric] for m in per_response if m[metric] is not None]
        summary[metric] = sum(values) / len(values) if values else None
        summary[f"{metric}_n"] = len(values)
    return summary


def normalized(summary: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    result = {}
    for metric in METRICS:
        value, base = summary.get(metric), baseline.get(metric)
        result[metric] = value / base if value is not None and base else None
    return result


def read_items(path: str) -> list[dict[str, Any]]:
    try:
        records = load_jsonl(path)
    except (RecordError, FileNotFoundError) as error:
        raise ConfigError(str(error)) from None
    for number, record in enumerate(records, start=1):
        if not isinstance(record.get("response"), str):
            raise ConfigError(f"{path}:{number}: record has no text 'response'")
    return records


@dataclass
class DegenerationArgs:
    items: list[str] = field(metadata={"help": "item / response JSONL files (repeat or comma-separate)"})
    output: str = field(metadata={"help": "JSON to write"})
    baseline: str | None = field(default=None, metadata={"help": "the unpruned model's items"})


def run(args: DegenerationArgs) -> dict[str, Any]:
    baseline = summarize(read_items(args.baseline)) if args.baseline else None
    files = {}
    for path in args.items:
        summary = summarize(read_items(path))
        if baseline is not None:
            summary["normalized"] = normalized(summary, baseline)
        files[Path(path).name] = summary
    result = {"baseline": baseline, "files": files}
    atomic_write_json(args.output, result)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(DegenerationArgs, argv, doc=__doc__)
    try:
        result = run(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, summary in result["files"].items():
        shown = ", ".join(f"{m} {summary[m]:.3f}" for m in METRICS if summary[m] is not None)
        print(f"[degeneration] {name}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
