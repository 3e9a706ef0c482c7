"""Arithmetic probe (paper Figures 3, 7 and 10): how much each layer matters for the first answer digit.

    python -m analysis.arithmetic_probe --model meta-llama/Llama-3.1-8B-Instruct --output_dir outputs/llama/probe/base
    python -m analysis.arithmetic_probe --model outputs/llama/bi-25 --adapter outputs/llama/bi-25-sgr/adapter \\
        --output_dir outputs/llama/probe/bi-25-sgr --ablate_layers none     # Figure 7: accuracy after recovery

Items: ``single_digit_three_ops``, the hub's ``EleutherAI/arithmetic`` config ``arithmetic_1dc`` (validation
split) by default, or a local JSONL file in its schema (``{"context": ..., "completion": ...}``), 200 sampled with random_state 42; contexts rewritten ``Q:`` -> ``Question:``, ``A:`` ->
``Answer:`` with blank lines collapsed, after a fixed 3-shot prefix. The target is the first digit of the
answer (after `` -`` for a negative one). For the unablated model and for each ablated layer (its input
passed through unchanged, through nnsight) the probe records the target's log-probability and whether the
target is the top-1 among the ten digit tokens. Writes ``arithmetic_probe.json``: ``baseline``
(accuracy, mean log-probability) and, per ablated layer, the mean change in log-probability and the
accuracy; and a manifest.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, parse_cli, report_error
from infra.datasets import load_records
from infra.files import OutputBusyError, atomic_write_json, output_lock
from infra.layout import PROBE_RESULT
from infra.manifest import Manifest
from infra.progress import progress as progress_bar

# The paper's items: EleutherAI/arithmetic, config arithmetic_1dc (single-digit three-operand problems).
DEFAULT_DATA = "EleutherAI/arithmetic"
# The paper's notebook's prefix, each shot on one line (the probed context keeps its own line break).
FEW_SHOT_PREFIX = (
    "Question: What is (4 * 4) * 1? Answer: 16\n"
    "Question: What is (8 + 3) * 5? Answer: 55\n"
    "Question: What is (7 + 5) - 6? Answer: 6\n"
)
DIGITS = "0123456789"


@dataclass
class ProbeItem:
    text: str  # prefix + rewritten context, up to the position where the first digit comes
    digit: str


def rewrite_context(context: str) -> str:
    text = context.replace("Q:", "Question:").replace("A:", "Answer:")
    return re.sub(r"\n\s*\n", "\n", text).strip("\n")


def probe_items(records: list[dict[str, Any]], prefix: str = FEW_SHOT_PREFIX) -> list[ProbeItem]:
    items = []
    for number, record in enumerate(records, start=1):
        if "context" not in record or "completion" not in record:
            raise ConfigError(f"arithmetic record {number}: needs 'context' and 'completion'")
        answer = record["completion"].strip()
        negative = answer.startswith("-")
        digits = answer.lstrip("-")
        if not digits[:1].isdigit():
            raise ConfigError(f"arithmetic record {number}: answer {record['completion']!r} is not a number")
        text = prefix + rewrite_context(record["context"]) + (" -" if negative else " ")
        items.append(ProbeItem(text=text, digit=digits[0]))
    return items


def sample_records(records: list[dict[str, Any]], n_items: int, seed: int) -> list[dict[str, Any]]:
    """``DataFrame.sample(n, random_state=seed)``, the original selection."""
    import pandas as pd

    frame = pd.DataFrame(records)
    if n_items > len(frame):
        raise ConfigError(f"n_items {n_items} > {len(frame)} records")
    return frame.sample(n=n_items, random_state=seed).to_dict("records")


def encode_item(tokenizer: Any, item: ProbeItem) -> tuple[list[int], list[int], int]:
    """Token ids of the context and of the ten digit candidates at the next position, and the target.

    The context's trailing space (or space and minus) is kept when the tokenizer writes digits as separate
    tokens after it; when it merges space and digit (``Ġ3``), the candidates are the merged tokens.
    """
    splits = [(item.text, "")]
    if item.text.endswith(" -"):
        splits.append((item.text[:-1], "-"))
    splits.append((item.text.rstrip(" "), " ") if item.text.endswith(" ") else (item.text[:-2], " -"))
    for context, glue in splits:
        context_ids = tokenizer(context)["input_ids"]
        candidates = []
        for digit in DIGITS:
            ids = tokenizer(context + glue + digit)["input_ids"]
            if ids[: len(context_ids)] != context_ids or len(ids) != len(context_ids) + 1:
                break
            candidates.append(ids[-1])
        if len(candidates) == 10 and len(set(candidates)) == 10:
            return context_ids, candidates, candidates[DIGITS.index(item.digit)]
    raise ConfigError(f"the tokenizer does not give one token per digit after {item.text[-20:]!r}")


def _batches(encoded: list, batch_size: int):
    for start in range(0, len(encoded), batch_size):
        yield encoded[start : start + batch_size]


def _pad_left(rows: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row)
        mask[i, width - len(row) :] = 1
    return ids, mask


def score_logits(last_logits: Any, encoded: list) -> list[tuple[float, bool]]:
    """Per item: log-probability of the target token, and whether it is the top digit."""
    import torch

    log_probs = torch.log_softmax(last_logits.float(), dim=-1)
    results = []
    for row, (_, candidates, target) in zip(log_probs, encoded):
        digit_scores = row[candidates]
        results.append((float(row[target]), candidates[int(torch.argmax(digit_scores))] == target))
    return results


def shared_prefix(encoded: list, prefix_ids: list[int]) -> int:
    """How many leading tokens every item shares with the tokenized few-shot prefix (0: none usable)."""
    size = len(prefix_ids)
    if size == 0 or any(context[:size] != prefix_ids or len(context) == size for context, _, _ in encoded):
        return 0
    return size


def run_probe(
    model: Any,
    tokenizer: Any,
    items: list[ProbeItem],
    layers: list[int],
    batch_size: int = 16,
    prefix: str | None = FEW_SHOT_PREFIX,
) -> dict[str, Any]:
    """Baseline and per-layer ablation through nnsight (``layer.output = layer.input``).

    Every item starts with the same few-shot prefix, so its keys and values are computed once per ablated
    layer (with that layer ablated) and only the items' own tokens are run in batches: the same logits as
    whole contexts, at about a fifth of the tokens on the paper's prefix (a test compares both)."""
    import copy

    import torch
    from nnsight import TransformersModel

    from analysis.bi_profile import layer_envoys

    encoded = [encode_item(tokenizer, item) for item in items]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    wrapped = TransformersModel(model, task="text-generation", tokenizer=tokenizer)
    envoys = layer_envoys(wrapped, model)
    n_layers = len(envoys)
    bad = [layer for layer in layers if not 0 <= layer < n_layers]
    if bad:
        raise ConfigError(f"ablate_layers: layer {bad[0]} out of range (the model has {n_layers})")
    prefix_ids = tokenizer(prefix)["input_ids"] if prefix else []
    shared = shared_prefix(encoded, prefix_ids)

    def ablated(ablate: int | None) -> None:  # inside a trace
        if ablate is not None:
            layer = envoys[ablate]
            layer.output = layer.input

    def whole(ablate: int | None, batch: list) -> Any:
        ids, mask = _pad_left([context for context, _, _ in batch], pad_id)
        with (
            torch.no_grad(),
            wrapped.trace({"input_ids": ids.to(model.device), "attention_mask": mask.to(model.device)}),
        ):
            ablated(ablate)
            logits = wrapped.output.logits[:, -1, :].save()
        return logits

    def prefix_cache(ablate: int | None) -> Any:
        ids = torch.tensor([prefix_ids], device=model.device)
        with torch.no_grad(), wrapped.trace({"input_ids": ids, "use_cache": True}):
            ablated(ablate)
            cache = wrapped.output.past_key_values.save()
        return cache

    def after_prefix(ablate: int | None, batch: list, cache: Any) -> Any:
        rows = [context[shared:] for context, _, _ in batch]
        width = max(len(r) for r in rows)
        # Right-padded: each item's own tokens follow the prefix at their true positions, and no real token
        # attends to padding; the logits are read at each item's last token.
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, shared : shared + len(row)] = 1
        batch_cache = copy.deepcopy(cache)
        batch_cache.batch_repeat_interleave(len(rows))
        inputs = {"input_ids": ids.to(model.device), "attention_mask": mask.to(model.device)}
        with torch.no_grad(), wrapped.trace({**inputs, "past_key_values": batch_cache, "use_cache": True}):
            ablated(ablate)
            logits = wrapped.output.logits.save()
        last = torch.tensor([len(r) - 1 for r in rows], device=logits.device)
        return logits[torch.arange(len(rows), device=logits.device), last]

    def evaluate(ablate: int | None) -> list[tuple[float, bool]]:
        cache = prefix_cache(ablate) if shared else None
        results = []
        for batch in _batches(encoded, batch_size):
            logits = after_prefix(ablate, batch, cache) if shared else whole(ablate, batch)
            results.extend(score_logits(logits, batch))
        return results

    baseline = evaluate(None)
    report: dict[str, Any] = {
        "n_items": len(items),
        "prefix_tokens_shared": shared,
        "baseline": {
            "accuracy": sum(hit for _, hit in baseline) / len(baseline),
            "mean_logprob": sum(lp for lp, _ in baseline) / len(baseline),
            "hits": [int(hit) for _, hit in baseline],  # per item, in item order (paired comparisons)
        },
        "layers": [],
    }
    for layer in progress_bar(layers, desc="ablate", unit="layer"):
        results = evaluate(layer)
        report["layers"].append(
            {
                "layer": layer,
                "delta_logprob": sum(a[0] - b[0] for a, b in zip(results, baseline)) / len(baseline),
                "accuracy": sum(hit for _, hit in results) / len(results),
                "hits": [int(hit) for _, hit in results],
            }
        )
    return report


@dataclass
class ProbeArgs:
    model: str
    output_dir: str
    adapter: str | None = None
    data: str = field(default=DEFAULT_DATA, metadata={"help": "JSONL (context, completion) or a hub id"})
    hub_config: str | None = field(default="arithmetic_1dc", metadata={"help": "when --data is a hub id"})
    n_items: int = 200
    seed: int = 42
    skip_items: int = field(
        default=0,
        metadata={"help": "leave out the sample's first N items (fresh to a probe of N items: the sample of N is "
                  "the first N of a larger one)"},
    )  # fmt: skip
    ablate_layers: str = field(
        default="all",
        metadata={"help": "all, none, a comma list, or critical:<probe json> (the layer whose ablation dropped "
                  "that probe's accuracy most)"},
    )  # fmt: skip
    batch_size: int = 16
    dtype: str = "float32"
    device: str = "auto"


def critical_layer(report: dict[str, Any]) -> int:
    """The layer whose ablation drops a probe's accuracy most (ties: the earlier layer)."""
    base = report["baseline"]["accuracy"]
    if not report.get("layers"):
        raise ConfigError("critical layer: the probe ablated no layer")
    return max(report["layers"], key=lambda e: (base - e["accuracy"], -e["layer"]))["layer"]


def parse_layers(value: str, n_layers: int) -> list[int]:
    if value.startswith("critical:"):
        from infra.files import read_json

        return [critical_layer(read_json(value.split(":", 1)[1]))]
    if value == "all":
        return list(range(n_layers))
    if value in ("none", ""):
        return []
    try:
        return [int(part) for part in str(value).split(",")]
    except ValueError:
        raise ConfigError(f"ablate_layers: expected all, none or a comma list, got {value!r}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(ProbeArgs, argv, doc=__doc__, gpu_stage=True)
    output_dir = Path(args.output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with output_lock(output_dir / ".lock", output_dir):
            return _probe(args, output_dir)
    except (ConfigError, OSError, OutputBusyError, ValueError) as error:
        return report_error(error)


def _probe(args: ProbeArgs, output_dir: Path) -> int:
    from infra.modeling import decoder_layers, load_model, load_tokenizer

    records = load_records(args.data, hub_config=args.hub_config, split="validation")
    if not 0 <= args.skip_items < args.n_items:
        raise ConfigError(
            f"key 'skip_items': expected 0 <= skip_items < n_items ({args.n_items}), got {args.skip_items}"
        )
    items = probe_items(sample_records(records, args.n_items, args.seed)[args.skip_items :])
    model = load_model(
        args.model, adapter=args.adapter, dtype=args.dtype, device=args.device, merge_adapter=True
    )
    tokenizer = load_tokenizer(args.model)
    layers = parse_layers(str(args.ablate_layers), len(decoder_layers(model)))
    manifest = Manifest("analysis.arithmetic_probe", config=args, seeds={"seed": args.seed})
    manifest.add_input("model", args.model)
    manifest.add_input("data", args.data)
    report = run_probe(model, tokenizer, items, layers, args.batch_size)
    report.update({"model": args.model, "adapter": args.adapter, "skip_items": args.skip_items})
    atomic_write_json(output_dir / PROBE_RESULT, report)
    manifest.write(output_dir)
    base = report["baseline"]
    print(
        f"[probe] accuracy {base['accuracy']:.3f}, mean log-prob {base['mean_logprob']:.3f}, "
        f"{len(report['layers'])} layers ablated -> {output_dir / PROBE_RESULT}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
