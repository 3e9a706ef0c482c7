"""Evaluation: generative benchmarks (GSM8K, HumanEval+, MBPP+, XSUM), lm-eval classification, retention."""
