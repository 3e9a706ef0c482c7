"""A small results tree in the layout of ``infra/layout.py``, with the paper's qualitative effects.

Numbers are constructed (not measured): the unpruned model scores highest, pruning lowers generative
scores much more than classification, recovery wins part of it back, SGR more than dataset responses.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from analysis.code_errors import OUTCOMES

BASE = {"gsm8k": 0.80, "humaneval": 0.60, "mbpp": 0.55, "xsum": 0.30, "hellaswag": 0.60, "piqa": 0.80}
NUM_LAYERS = 8


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def _write_eval(
    directory: Path, factor_generative: float, factor_classification: float, rng: random.Random
) -> None:
    scores = {}
    for task, base in BASE.items():
        factor = factor_classification if task in ("hellaswag", "piqa") else factor_generative
        scores[task] = round(base * factor, 4)
    for task in ("gsm8k", "humaneval", "mbpp", "xsum"):
        _write_json(directory / f"{task}.json", {"task": task, "score": scores[task], "n": 20})
    _write_json(directory / "classification.json", {"scores": {t: scores[t] for t in ("hellaswag", "piqa")}})
    for task in ("humaneval", "mbpp"):
        _write_items(directory / f"{task}.jsonl", scores[task], rng, code=True)
    _write_items(directory / "gsm8k.jsonl", scores["gsm8k"], rng, code=False)


def _response(quality: float, rng: random.Random) -> str:
    words = ["the", "answer", "is", "we", "add", "then", "multiply", "so", "total", "step"]
    if rng.random() < quality:
        return " ".join(f"{rng.choice(words)} {rng.randint(0, 99)}." for _ in range(6))
    loop = f"{rng.choice(words)} {rng.choice(words)} {rng.randint(0, 9)}."
    return " ".join([loop] * 8)


FAILURE_DETAILS = {  # error texts as the sandbox records them
    "failed_assertion": "AssertionError: ",
    "runtime_error": "TypeError: unsupported operand type(s) for +: 'int' and 'str'",
    "undefined_name": "NameError: name 'helper' is not defined",
    "syntax_error_unbalanced_brackets": "SyntaxError: '(' was never closed (<solution>, line 3)",
    "syntax_error_other": "SyntaxError: invalid syntax (<solution>, line 1)",
    "timeout": "no result within 30s",
}


def _write_items(path: Path, pass_rate: float, rng: random.Random, code: bool) -> None:
    failures = [o for o in OUTCOMES if o != "passed"]
    lines = []
    for i in range(20):
        passed = i < round(20 * pass_rate)
        record = {
            "id": f"{path.stem}/{i}",
            "response": _response(pass_rate, rng),
            "score": float(passed),
            "num_tokens": 40,
        }
        if code:
            record["outcome"] = "passed" if passed else rng.choice(failures)
            record["detail"] = "" if passed else FAILURE_DETAILS[record["outcome"]]
        lines.append(json.dumps(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _write_training(run: Path, offset: float) -> None:
    metrics = [{"step": 0, "eval_loss": 2.5, "eval_perplexity": 12.18}]
    for step in range(1, 41):
        loss = 1.2 + 1.3 * 0.92**step + offset
        metrics.append({"step": step, "train_loss": loss + 0.05})
        if step % 10 == 0:
            metrics.append({"step": step, "eval_loss": loss, "eval_perplexity": 2.718281828**loss})
    path = run / "train" / "metrics.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(m) + "\n" for m in metrics))


def write_fixture_results(root: Path, seed: int = 0) -> Path:
    """Every run of the paper's grid (configs/experiments/paper.yaml), in the layout the scripts write."""
    rng = random.Random(seed)
    _write_eval(root / "base" / "eval", 1.0, 1.0, rng)
    for method, generative in (("reverse", 0.30), ("bi", 0.45), ("iterative", 0.55)):
        for amount, scale in (("2layers", 0.5), ("10pct", 0.6), ("15pct", 0.8), ("25pct", 1.0)):
            factor = 1 - (1 - generative) * scale
            run = root / "pruned" / f"{method}-{amount}"
            _write_eval(run / "eval", factor, 1 - (1 - factor) / 4, rng)
            _write_json(run / "model" / "plan.json", {"num_layers": 32, "method": method})
            for data in ("alpaca", "dolci"):
                for recovery, gain in (("sft", 0.15), ("sgr", 0.30)):
                    if data == "alpaca" and amount != "25pct":
                        continue
                    name = f"{method}-{amount}-{recovery}-{data}"
                    _write_eval(root / "recovered" / name / "eval", min(1.0, factor + gain), 0.95, rng)
                    _write_training(root / "recovered" / name, 0.2 if recovery == "sft" else 0.0)
                    if amount == "25pct" and recovery == "sgr" and data == "dolci":
                        _write_json(
                            root / "probe" / name / "arithmetic_probe.json",
                            {
                                "n_items": 200,
                                "baseline": {"accuracy": 0.2 + gain, "mean_logprob": -1.5},
                                "layers": [],
                            },
                        )
        for recipe, delta in (("lora", 0.02), ("full", 0.05)):
            name = f"{method}-25pct-sgr-dolci-{recipe}"
            _write_eval(root / "recovered" / name / "eval", generative + 0.30 + delta, 0.95, rng)
            _write_training(root / "recovered" / name, -0.1)
        _write_json(
            root / "probe" / f"{method}-25pct" / "arithmetic_probe.json",
            {"n_items": 200, "baseline": {"accuracy": 0.15, "mean_logprob": -2.5}, "layers": []},
        )
    # Single-layer sweep: layer 1 and the last layers matter most.
    sweep = root / "sweep"
    _write_json(
        sweep / "baseline.json",
        {"removed": [], "scores": {t: BASE[t] for t in ("gsm8k", "humaneval", "mbpp", "xsum")}},
    )
    for task in ("gsm8k", "humaneval", "mbpp"):
        _write_items(sweep / f"baseline.{task}.jsonl", BASE[task], rng, code=task != "gsm8k")
    for layer in range(1, NUM_LAYERS):
        damage = 0.8 if layer in (1, NUM_LAYERS - 1) else 0.15 + 0.05 * layer
        sensitivity = {"gsm8k": 1.0, "humaneval": 0.8, "mbpp": 0.7, "xsum": 0.4}
        scores = {t: round(BASE[t] * (1 - damage * sensitivity[t]), 4) for t in sensitivity}
        _write_json(sweep / f"layer_{layer:03d}.json", {"removed": [layer], "scores": scores})
        for task in ("gsm8k", "humaneval", "mbpp"):
            _write_items(sweep / f"layer_{layer:03d}.{task}.jsonl", scores[task], rng, code=task != "gsm8k")
    _write_json(
        root / "probe" / "base" / "arithmetic_probe.json",
        {
            "n_items": 200,
            "baseline": {"accuracy": 0.9, "mean_logprob": -0.3},
            "layers": [
                {
                    "layer": layer,
                    "delta_logprob": -3.0 if layer in (0, 5) else -0.2 * rng.random(),
                    "accuracy": 0.15 if layer in (0, 5) else 0.85,
                }
                for layer in range(NUM_LAYERS)
            ],
        },
    )
    _write_json(
        root / "bi_profile" / "bi_profile.json",
        {
            "cosine": [0.5, 0.8, 0.9, 0.93, 0.95, 0.96, 0.94, 0.7],
            "block_influence": [0.5, 0.2, 0.1, 0.07, 0.05, 0.04, 0.06, 0.3],
        },
    )
    for name, factor in (("pruned", 0.4), ("sgr8-qlora", 0.8), ("sgr8-full", 0.9)):
        _write_eval(root / "upper_bound" / name / "eval", factor, 1.0, rng)
    return root
