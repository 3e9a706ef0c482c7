"""Single-layer sweep (paper Figure 1): remove each layer alone and score the generative tasks.

    python -m layer_pruner.sweep --model meta-llama/Llama-3.1-8B-Instruct --model_config llama-3.1-8b-instruct \\
        --output_dir outputs/llama/sweep
    python -m layer_pruner.sweep ... --layer 7        # one SLURM array task (SLURM_ARRAY_TASK_ID)
    python -m layer_pruner.sweep ... --layers 1,2,3   # these layers only
    python -m layer_pruner.sweep ... --backend vllm   # one vLLM engine; each candidate made inside it

Writes ``baseline.json`` and ``layer_XXX.json`` (per-task scores) and ``<name>.<task>.jsonl`` (raw responses
with their scores and code outcomes) per layer; finished layers are skipped on rerun, so array tasks and a
final collecting run share one directory. ``sweep.json`` collects every finished layer.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from infra.config import ConfigError, parse_cli, report_error
from infra.files import atomic_write_json, read_json
from infra.layout import BASELINE, SWEEP_SETTINGS, SWEEP_SUMMARY, layer_of, unscored_layers
from infra.manifest import Manifest
from infra.resume import check_resume
from layer_pruner.search import CandidateScoring


@dataclass(kw_only=True)
class SweepArgs(CandidateScoring):
    output_dir: str
    layer: int | None = field(default=None, metadata={"help": "one layer (an array task); all when absent"})
    layers: list[int] = field(default_factory=list, metadata={"help": "these layers; all when empty"})
    include_first: bool = False

    def __post_init__(self) -> None:
        if self.layer is not None and self.layer < 0:
            raise ConfigError(f"key 'layer': negative layer index {self.layer}")
        if any(layer < 0 for layer in self.layers):
            raise ConfigError(f"key 'layers': negative layer index in {self.layers}")
        if self.layer is not None and self.layers:
            raise ConfigError("give --layer or --layers, not both")
        self.check_backend()


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(SweepArgs, argv, doc=__doc__, gpu_stage=True)
    from infra.model_spec import resolve_model_spec
    from layer_pruner.iterative import single_layer_sweep

    try:
        spec = resolve_model_spec(args.model_config, args.model)
        output_dir = Path(args.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        check_resume(output_dir / SWEEP_SETTINGS, args.scoring_settings(), remedy="use another --output_dir")
        scorer, model, tokenizer = args.candidates(spec)
        output_dir = Path(args.output_dir)
        layers = [args.layer] if args.layer is not None else (args.layers or None)
        num_layers = spec.num_layers
        single_layer_sweep(
            model,
            tokenizer,
            scorer,
            output_dir,
            layers=layers,
            skip_first=not args.include_first,
            baseline=args.layer
            is None,  # an array task scores its layer; a run over --layers the baseline too
        )
    except (ConfigError, ValueError, FileNotFoundError) as error:
        return report_error(error)
    finished = {
        path.stem: read_json(path)["scores"]
        for path in sorted(output_dir.glob("*.json"))
        if layer_of(path.stem) is not None
    }
    baseline = output_dir / f"{BASELINE}.json"
    atomic_write_json(
        output_dir / SWEEP_SUMMARY,
        {
            "model": args.model,
            "tasks": args.tasks,
            "n_items": args.n_items,
            "baseline": read_json(baseline)["scores"] if baseline.exists() else None,
            "layers": finished,
        },
    )
    # Complete (a manifest) once the baseline and every layer the sweep covers (``--layers``, else every layer)
    # are scored, however many jobs that took. A plan over more layers than a manifest's run sees the missing
    # layer files and runs the sweep again (orchestration/plan.py).
    first = 0 if args.include_first else 1
    if not unscored_layers(output_dir, args.layers or range(first, num_layers)) and baseline.exists():
        Manifest("layer_pruner.sweep", config=args, seeds={"seed": args.seed}).write(output_dir)
    print(f"[sweep] {len(finished)} layers scored in {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
