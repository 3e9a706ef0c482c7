"""Degeneration measures: the fast implementation against the original definition computed directly with NLTK.

    python bench/bench_degeneration.py                         # 200 responses of ~600 words, 3 repeats
    python bench/bench_degeneration.py --responses 100 --words 2000 --repeats 5

Both compute rep-2/3/4, Self-BLEU-4 and length exactly as the paper's script did (NLTK sentences and words;
``tests/helpers/degeneration_reference.py`` is the direct version, with ``sentence_bleu`` per sentence);
they are timed side by side on the same synthetic degenerate responses, interleaved, and their values
compared. Reports the median seconds of each, the ratio, and the largest difference of any value; and, to
separate the measures from NLTK's tokenizers (which both must run), the Self-BLEU-4 of the same tokenized
sentences by ``sentence_bleu`` and by the one-pass implementation.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.degeneration import response_self_bleu, summarize, tokenized  # noqa: E402
from tests.helpers.degeneration_reference import original_definition  # noqa: E402


def make_responses(count: int, words_per_response: int, seed: int = 0) -> list[str]:
    """Synthetic responses with the repetition a degenerating model shows: recycled sentences and loops."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(3000)] + ["the", "a", "is", "of", "to", "and", "=", "+"]
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
            parts.append(sentence.capitalize() + rng.choice([". ", "! ", "? "]))
            total += len(sentence.split())
        responses.append("".join(parts))
    return responses


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--responses", type=int, default=200)
    parser.add_argument("--words", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    responses = make_responses(args.responses, args.words)
    records = [{"response": text} for text in responses]
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smoothing = SmoothingFunction().method1
    sentences = [tokenized(text)[1] for text in responses]

    def bleu_direct(per_sentence: list[list[str]]) -> float | None:
        kept = [s for s in per_sentence if len(s) >= 4]
        if len(per_sentence) < 2 or len(kept) < 2:
            return None
        return sum(
            sentence_bleu(kept[:i] + kept[i + 1 :], h, weights=(0.25,) * 4, smoothing_function=smoothing)
            for i, h in enumerate(kept)
        ) / len(kept)

    timings: dict[str, list[float]] = {"fast": [], "nltk_direct": [], "bleu_fast": [], "bleu_nltk": []}
    for _ in range(args.repeats):
        started = time.perf_counter()
        ours = summarize(records)
        timings["fast"].append(time.perf_counter() - started)
        started = time.perf_counter()
        reference = original_definition(responses)
        timings["nltk_direct"].append(time.perf_counter() - started)
        started = time.perf_counter()
        bleu_ours = [response_self_bleu(s) for s in sentences]
        timings["bleu_fast"].append(time.perf_counter() - started)
        started = time.perf_counter()
        bleu_reference = [bleu_direct(s) for s in sentences]
        timings["bleu_nltk"].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in timings.items()}
    report = {
        "responses": args.responses,
        "words_per_response": args.words,
        "repeats": args.repeats,
        "median_s": {name: round(value, 3) for name, value in median.items()},
        "spread_s": {name: [round(min(v), 3), round(max(v), 3)] for name, v in timings.items()},
        "speedup_end_to_end": round(median["nltk_direct"] / median["fast"], 1),
        "speedup_self_bleu_on_tokenized": round(median["bleu_nltk"] / median["bleu_fast"], 1),
        "max_abs_difference": max(abs(ours[m] - reference[m]) for m in reference),
        "max_abs_difference_self_bleu": max(
            abs(a - b) for a, b in zip(bleu_ours, bleu_reference) if a is not None and b is not None
        ),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
