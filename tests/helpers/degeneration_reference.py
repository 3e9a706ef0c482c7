"""The paper's degeneration script (``analysis/calc_self_bleu.py`` of its repository) written directly with
NLTK: the reference the fast implementation in ``analysis/degeneration.py`` is tested and benchmarked against.
"""

from __future__ import annotations


def original_definition(responses: list[str]) -> dict[str, float]:
    """The paper's calc_self_bleu.py, written directly with NLTK (responses with no value skipped)."""
    import nltk
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smoothing = SmoothingFunction().method1
    bleu_scores = []
    for text in responses:
        sents = nltk.sent_tokenize(text.lower())
        if len(sents) < 2:
            continue
        tokenized = [nltk.word_tokenize(s) for s in sents]
        doc = []
        for i, hypothesis in enumerate(tokenized):
            references = [r for r in tokenized[:i] + tokenized[i + 1 :] if len(r) >= 4]
            if len(hypothesis) < 4 or not references:
                continue
            doc.append(
                sentence_bleu(references, hypothesis, weights=(0.25,) * 4, smoothing_function=smoothing)
            )
        if doc:
            bleu_scores.append(sum(doc) / len(doc))
    result = {"self_bleu_4": sum(bleu_scores) / len(bleu_scores)}
    for n in (2, 3, 4):
        rates = []
        for text in responses:
            tokens = nltk.word_tokenize(text.lower())
            if len(tokens) < n:
                continue
            grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
            rates.append(1.0 - len(set(grams)) / len(grams))
        result[f"rep_{n}"] = 100 * sum(rates) / len(rates)
    result["length"] = sum(len(nltk.word_tokenize(r)) for r in responses) / len(responses)
    return result
