"""Text degeneration of generated responses (paper Figures 2 and 9), as the original script computed it.

    python -m analysis.degeneration --items outputs/llama/sweep/layer_007.gsm8k.jsonl \\
        --baseline outputs/llama/sweep/baseline.gsm8k.jsonl --output outputs/llama/degeneration/layer_007.json
    python -m analysis.degeneration --items a.jsonl --items b.jsonl --output degeneration.json

Definitions (the paper's ``calc_self_bleu.py``):
- rep-n (n = 2, 3, 4): per response, ``nltk.word_tokenize`` of the lowercased text, 1 - distinct n-grams /
  n-grams; responses with fewer than n tokens are skipped; the mean over responses, in percent.
- Self-BLEU-4: per response, ``nltk.sent_tokenize`` of the lowercased text (responses with fewer than two
  sentences are skipped), ``word_tokenize`` per sentence; every sentence of at least 4 tokens is scored
  with NLTK's sentence BLEU-4 (uniform weights, smoothing method 1) against the other sentences of at least
  4 tokens; the mean over those sentences, then over the responses that have one.
- length: ``word_tokenize`` tokens of the response as written, the mean over all responses.
A mean over no response is ``None`` (the original printed 0) and the count of responses behind each mean is
kept. With ``--baseline``, each file also gets its change from the unpruned model (value - baseline value,
as the paper's Figure 2 draws it).

Self-BLEU is computed in one pass over each response's n-grams (the two largest counts of every n-gram
give the clipping count against "all other sentences"), which equals NLTK's ``sentence_bleu`` without its
quadratic re-counting (``bench/bench_degeneration.py`` measures both).
"""

from __future__ import annotations

import functools
import math
import sys
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, parse_cli, report_error
from infra.files import OutputBusyError, RecordError, atomic_write_json, load_jsonl, output_lock
from infra.paths import unique_labels

REP_NS = (2, 3, 4)
MIN_SENTENCE_TOKENS = 4  # BLEU-4 needs 4-grams: shorter sentences are neither hypotheses nor references
BLEU_EPSILON = 0.1  # NLTK SmoothingFunction.method1


@functools.lru_cache(maxsize=1)
def _nltk():
    import nltk

    from infra.nltk_data import ensure_punkt

    ensure_punkt()
    return nltk


def words(text: str) -> list[str]:
    """``nltk.word_tokenize``: punkt sentences, then NLTK's Treebank words of each."""
    return _nltk().word_tokenize(text)


def sentences(text: str) -> list[list[str]]:
    """The tokenized sentences of a lowercased response (``sent_tokenize``, then ``word_tokenize`` each)."""
    return tokenized(text)[1]


def tokenized(text: str) -> tuple[list[str], list[list[str]]]:
    """``(word_tokenize(text.lower()), [word_tokenize(s) for s in sent_tokenize(text.lower())])``, with each
    sentence's Treebank words computed once: ``word_tokenize`` of a text is the Treebank words of its punkt
    sentences, and ``word_tokenize`` of one sentence re-splits it with punkt (almost always into itself)."""
    nltk = _nltk()
    treebank = nltk.tokenize._treebank_word_tokenizer
    parts = nltk.sent_tokenize(text.lower())
    per_part = [treebank.tokenize(part) for part in parts]
    lowered = [token for tokens in per_part for token in tokens]
    per_sentence = []
    for part, tokens in zip(parts, per_part):
        inner = nltk.sent_tokenize(part)
        per_sentence.append(tokens if inner == [part] else [t for s in inner for t in treebank.tokenize(s)])
    return lowered, per_sentence


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


def response_self_bleu(tokenized: list[list[str]]) -> float | None:
    """The original's per-response Self-BLEU-4: ``None`` below two sentences or two long-enough ones."""
    if len(tokenized) < 2:
        return None
    kept = [tokens for tokens in tokenized if len(tokens) >= MIN_SENTENCE_TOKENS]
    return self_bleu(kept) if len(kept) >= 2 else None


def response_metrics(text: str) -> dict[str, float | None]:
    lowered, per_sentence = tokenized(text)
    metrics: dict[str, float | None] = {f"rep_{n}": rep_n(lowered, n) for n in REP_NS}
    metrics["self_bleu_4"] = response_self_bleu(per_sentence)
    metrics["length"] = float(len(words(text)))
    return metrics


METRICS = (*(f"rep_{n}" for n in REP_NS), "self_bleu_4", "length")
PERCENT = {f"rep_{n}" for n in REP_NS}  # reported in percent, as the original printed them


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the responses where each measure is defined (rep-n in percent), and how many."""
    per_response = [response_metrics(r.get("response", "")) for r in records]
    summary: dict[str, Any] = {"n": len(records)}
    for metric in METRICS:
        values = [m[metric] for m in per_response if m[metric] is not None]
        scale = 100.0 if metric in PERCENT else 1.0
        summary[metric] = scale * sum(values) / len(values) if values else None
        summary[f"{metric}_n"] = len(values)
    reps = [summary[f"rep_{n}"] for n in REP_NS]
    summary["repetition"] = sum(reps) / len(reps) if all(r is not None for r in reps) else None
    return summary


def change(summary: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """Each measure minus the unpruned model's (the paper's Figure 2)."""
    result = {}
    for metric in (*METRICS, "repetition"):
        value, base = summary.get(metric), baseline.get(metric)
        result[metric] = value - base if value is not None and base is not None else None
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
    labels: list[str] = field(
        default_factory=list,
        metadata={"help": "one per --items (default: each path's shortest distinguishing trailing part)"},
    )


def run(args: DegenerationArgs) -> dict[str, Any]:
    labels = unique_labels(args.items, args.labels)
    with output_lock(Path(args.output).with_name(Path(args.output).name + ".lock"), args.output):
        baseline = summarize(read_items(args.baseline)) if args.baseline else None
        files = {}
        for label, path in zip(labels, args.items):
            summary = {"path": path, **summarize(read_items(path))}
            if baseline is not None:
                summary["change"] = change(summary, baseline)
            files[label] = summary
        result = {"baseline": baseline, "files": files}
        atomic_write_json(args.output, result)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(DegenerationArgs, argv, doc=__doc__)
    try:
        result = run(args)
    except (ConfigError, OutputBusyError, RuntimeError) as error:
        return report_error(error)
    for name, summary in result["files"].items():
        shown = ", ".join(f"{m} {summary[m]:.3f}" for m in METRICS if summary[m] is not None)
        print(f"[degeneration] {name}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
