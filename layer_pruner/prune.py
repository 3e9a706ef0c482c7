"""Choose layers to remove and write the pruned checkpoint (mergekit passthrough).

    python -m layer_pruner.prune --model meta-llama/Llama-3.1-8B-Instruct --method bi --ratio 0.25 \\
        --output_dir outputs/llama/bi-25
    python -m layer_pruner.prune --model .cache/models/tiny-llama --method layers --layers 3,5 --output_dir out
    python -m layer_pruner.prune --config configs/prune/bi.yaml --model ... --output_dir ...

Methods: reverse (the last n layers), bi (block influence), bi_shortgpt (official ShortGPT variant), angular
(Gromov et al. block), iterative (paper Algorithm 1; needs --model_config for prompts: the first n layers of
the search in --search_dir, run or continued here when it has fewer; ``layer_pruner.search``), layers (an
explicit list). ``--plan_only`` writes plan.json without materializing.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from infra.calibration import CalibrationConfig, calibration_texts
from infra.config import ConfigError, parse_cli, report_error
from infra.files import atomic_directory
from infra.manifest import Manifest
from infra.modeling import ModelLoadError, check_causal_lm, count_parameters, load_model, load_tokenizer
from layer_pruner.plan import METHODS, PlanError, PrunePlan, layers_to_remove, validate_removal
from layer_pruner.search import SearchOptions


@dataclass(kw_only=True)
class PruneArgs(SearchOptions):
    method: str = field(metadata={"help": "|".join(METHODS)})
    output_dir: str
    n: int | None = None
    ratio: float | None = None
    layers: list[int] | None = None
    calibration: str = field(default="openai/gsm8k", metadata={"help": "hub id or local file"})
    calibration_split: str = "test"
    calibration_template: str = field(
        default=CalibrationConfig.template,
        metadata={"help": "default: the paper notebook's lm-eval chat GSM8K"},
    )
    n_calibration: int = 100
    calibration_max_length: int = 2048
    batch_size: int = 1
    plan_only: bool = False
    overwrite: bool = False
    out_shard_size: int = 500_000_000

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"key 'method': unknown method {self.method!r} (known: {', '.join(METHODS)})")
        if self.method == "layers":
            if not self.layers:
                raise ConfigError("key 'layers': method 'layers' needs --layers i,j,...")
        elif (self.n is None) == (self.ratio is None):
            raise ConfigError(f"method {self.method!r} needs exactly one of --n or --ratio")
        self.check_search()
        searching = self.candidate_block is not None or self.baseline_only or self.search_dir is not None
        if searching and self.method != "iterative":
            raise ConfigError(
                "--search_dir, --candidate_block and --baseline_only belong to the iterative method"
            )
        if self.method == "iterative" and self.model_config is None:
            raise ConfigError("key 'model_config': the iterative method needs --model_config for its prompts")


def choose(args: PruneArgs, num_layers: int) -> PrunePlan:
    """Build the plan for ``args`` (loads the model only for methods that read it)."""
    if args.method == "layers":
        removed = validate_removal(num_layers, list(args.layers or []))
        return PrunePlan(args.model, "layers", num_layers, removed, n=len(removed))
    n = layers_to_remove(num_layers, n=args.n, ratio=args.ratio)
    common = {
        "base_model": args.model,
        "method": args.method,
        "num_layers": num_layers,
        "n": n,
        "ratio": args.ratio,
    }
    if args.method == "reverse":
        return PrunePlan(removed_layers=list(range(num_layers - n, num_layers)), **common)

    from layer_pruner import scoring

    tokenizer = load_tokenizer(args.model)
    if args.method in ("bi", "bi_shortgpt", "angular"):
        model = load_model(args.model, dtype=args.dtype, device=args.device)
        calibration = CalibrationConfig(
            source=args.calibration,
            split=args.calibration_split,
            template=args.calibration_template,
            count=args.n_calibration,
            max_length=args.calibration_max_length,
        )
        texts = calibration_texts(calibration)
        kwargs = {"batch_size": args.batch_size, "max_length": args.calibration_max_length}
        if args.method == "angular":
            distances = scoring.angular_distances(model, tokenizer, texts, n, **kwargs)
            start = min(range(len(distances)), key=lambda i: (distances[i], -i))
            return PrunePlan(
                removed_layers=list(range(start, start + n)),
                scores={"angular_distance_by_start": distances},
                calibration=calibration.describe(),
                **common,
            )
        variant = "blocks" if args.method == "bi" else "hf_hidden_states"
        influence = scoring.block_influence(model, tokenizer, texts, variant=variant, **kwargs)
        return PrunePlan(
            removed_layers=scoring.lowest(influence, n),
            scores={"block_influence": influence},
            calibration=calibration.describe(),
            **common,
        )

    from layer_pruner.iterative import search_dir_for
    from layer_pruner.search import prefix, run_search

    search_dir = Path(args.search_dir) if args.search_dir else search_dir_for(args.output_dir)
    removed = prefix(search_dir, n)
    if removed is None or args.baseline_only or args.candidate_block is not None:
        result = run_search(args, n, search_dir)
        if result is None:
            raise SystemExit(0)  # an array task scored its part; the final run prunes
        removed = result["removed"]
    from layer_pruner.iterative import read_order

    order = read_order(search_dir) or {}
    history = [step for step in order.get("history", []) if step["step"] <= n]
    return PrunePlan(
        removed_layers=removed,
        scores={"history": history, "baseline": order.get("baseline")},
        calibration={"tasks": args.tasks, "n_items": args.n_items, "search_dir": str(search_dir)},
        **common,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(PruneArgs, argv, doc=__doc__, gpu_stage=True)
    manifest = Manifest("layer_pruner.prune", config=args, seeds={"seed": args.seed})
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not args.overwrite:
        print(f"error: {output_dir} already exists (pass --overwrite to replace it)", file=sys.stderr)
        return 2
    try:
        config = check_causal_lm(args.model)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plan = choose(args, config.num_hidden_layers)
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)
    except (ConfigError, PlanError, ModelLoadError, FileNotFoundError) as error:
        return report_error(error)
    print(f"[prune] {plan.method}: removing layers {plan.removed_layers} of {plan.num_layers}")
    if args.plan_only:
        with atomic_directory(output_dir, overwrite=args.overwrite) as temporary:
            plan.save(temporary)
            manifest.write(temporary)
        print(f"[prune] wrote {output_dir / 'plan.json'}")
        return 0
    from layer_pruner.materialize import count_checkpoint_parameters, materialize, resolve_model_dir

    device = "cuda" if args.device in ("auto", "cuda") and _cuda() else "cpu"
    materialize(
        plan,
        output_dir,
        manifest=manifest,
        device=device,
        out_shard_size=args.out_shard_size,
        overwrite=args.overwrite,
    )
    before = count_checkpoint_parameters(resolve_model_dir(args.model))
    after = count_checkpoint_parameters(output_dir)
    print(
        f"[prune] sanity: layers {plan.num_layers} -> {len(plan.kept_layers)}, "
        f"parameters {before:,} -> {after:,} ({after / before:.1%}); wrote {output_dir}"
    )
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


__all__ = ["PruneArgs", "choose", "main", "count_parameters"]

if __name__ == "__main__":
    sys.exit(main())
