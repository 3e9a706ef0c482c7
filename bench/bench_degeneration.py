"""Degeneration metrics: this implementation versus a straightforward NLTK one (the original code's).

    python bench/bench_degeneration.py                      # 1,000 responses of ~2,000 words
    python bench/bench_degeneration.py --responses 200 --reference_sample 20

The NLTK reference (``nltk.ngrams`` + ``Counter`` for rep-n, ``sentence_bleu`` with smoothing method 1 of each
sentence against the others for Self-BLEU-4) is quadratic in the number of sentences, so it is timed on
the first ``--reference_sample`` responses; both implementations are timed on those same responses side by
side and their values compared, and this implementation is also timed on all of them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.degeneration import REP_NS, response_metrics, sentences, words  # noqa: E402


def make_responses(count: int, words_per_response: int, seed: int = 0) -> list[str]:
    """Synthetic responses with the repetition a degenerating model shows: recycled sentences and loops."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(3000)] + ["the", "a", "is", "of", "to", "and", "=", "+", "(", ")"]
    responses = []
    for _ in range(count):
        pool = [" ".join(rng.choices(vocabulary, k=rng.randint(5, 30))) for _ in range(20)]
        parts, total = [], 0
        while total < words_per_response:
            sentence = (
                rng.choice(pool)
                if rng.random() < 0.4
                else " ".join(rng.choices(vocabulary, k=rng.randint(5, 30)))
            )
            parts.append(sentence + rng.choice([". ", "! ", "? ", "\n"]))
            total += len(sentence.split())
        responses.append("".join(parts))
    return responses


def nltk_metrics(text: str) -> dict:
    from collections import Counter

    from nltk import ngrams
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    tokens = words(text)
    result = {}
    for n in REP_NS:
        grams = list(ngrams(tokens, n))
        result[f"rep_{n}"] = 1 - len(Counter(grams)) / len(grams) if grams else None
    sents = sentences(text)
    smoothing = SmoothingFunction().method1
    result["self_bleu_4"] = (
        sum(
            sentence_bleu(sents[:j] + sents[j + 1 :], sents[j], smoothing_function=smoothing)
            for j in range(len(sents))
        )
        / len(sents)
        if len(sents) >= 2
        else None
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--responses", type=int, default=1000)
    parser.add_argument("--words", type=int, default=2000)
    parser.add_argument("--reference_sample", type=int, default=30)
    args = parser.parse_args()
    responses = make_responses(args.responses, args.words)
    sample = responses[: args.reference_sample]

    started = time.perf_counter()
    ours_sample = [response_metrics(text) for text in sample]
    ours_sample_s = time.perf_counter() - started
    started = time.perf_counter()
    reference = [nltk_metrics(text) for text in sample]
    nltk_sample_s = time.perf_counter() - started
    worst = max(abs(o[m] - r[m]) for o, r in zip(ours_sample, reference) for m in r if r[m] is not None)
    started = time.perf_counter()
    for text in responses:
        response_metrics(text)
    ours_all_s = time.perf_counter() - started
    report = {
        "responses": args.responses,
        "mean_words": sum(len(words(t)) for t in responses) / len(responses),
        "mean_sentences": sum(len(sentences(t)) for t in sample) / len(sample),
        "sample": args.reference_sample,
        "ours_sample_s": ours_sample_s,
        "nltk_sample_s": nltk_sample_s,
        "speedup": nltk_sample_s / ours_sample_s,
        "max_abs_difference": worst,
        "ours_all_s": ours_all_s,
        "nltk_all_s_extrapolated": nltk_sample_s * args.responses / args.reference_sample,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
