"""Build every paper table and figure whose inputs exist; say which are missing and why.

    python -m analysis.build_artifacts --results outputs/llama-3.1-8b-instruct --output_dir artifacts/llama
    python -m analysis.build_artifacts --results outputs/toy --output_dir outputs/toy/artifacts --only figure_1,table_1

The results tree is described in ``analysis/layout.py``. Writes the artifacts (PNG + PDF figures; Markdown,
CSV and LaTeX tables) and ``artifacts.json`` (built files and missing inputs) into --output_dir. Exits
non-zero only on a real error, not on missing inputs; ``--strict`` makes a missing input an error too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from analysis import figures, tables
from analysis.tables import MissingInputs
from infra.config import ConfigError, parse_cli
from infra.files import atomic_write_json

ARTIFACTS: dict[str, tuple[str, Callable]] = {
    "table_1": ("Tables 1/3: retention after 25% pruning, no recovery", tables.table_pruning),
    "table_2": ("Tables 2/5: retention after 25% pruning and recovery", tables.table_recovery),
    "table_6": ("Table 6: retention at each pruning amount", tables.table_ratios),
    "table_upper_bound": ("Appendix A.6.2: GSM8K upper bound", tables.table_upper_bound),
    "figure_1": ("Figure 1: single-layer removal, per task", figures.figure_sweep),
    "figure_2": ("Figure 2: degeneration with one layer removed", figures.figure_degeneration),
    "figure_3": ("Figure 3: arithmetic probe, per ablated layer", figures.figure_probe),
    "figure_4": ("Figure 4: code outcomes with one layer removed", figures.figure_code_errors_sweep),
    "figure_5": ("Figure 5: held-out perplexity during recovery", figures.figure_perplexity),
    "figure_6": ("Figure 6: retention against pruning amount", figures.figure_ratios),
    "figure_7": ("Figure 7: arithmetic after recovery", figures.figure_probe_recovery),
    "figure_8": ("Figure 8: code outcomes after recovery", figures.figure_code_errors_models),
    "figure_12": (
        "Figure 12: QLoRA versus full fine-tuning",
        lambda results, output: figures.figure_perplexity(results, output, kind="full_ft"),
    ),
    "figure_bi_profile": ("Block-influence profile", figures.figure_bi_profile),
}


@dataclass
class BuildArgs:
    results: str = field(metadata={"help": "one model's results tree (analysis/layout.py)"})
    output_dir: str
    only: list[str] = field(default_factory=list, metadata={"help": "artifact names; default: all"})
    strict: bool = False

    def __post_init__(self) -> None:
        unknown = [name for name in self.only if name not in ARTIFACTS]
        if unknown:
            raise ConfigError(f"key 'only': unknown artifact {unknown[0]!r} (known: {', '.join(ARTIFACTS)})")


def build(results: str | Path, output_dir: str | Path, only: list[str] | None = None) -> dict:
    """Build what can be built; returns ``{"built": {name: [files]}, "missing": {name: reason}}``."""
    if not Path(results).is_dir():
        raise FileNotFoundError(f"{results}: no such results directory")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"results": str(results), "built": {}, "missing": {}}
    for name in only or list(ARTIFACTS):
        _, function = ARTIFACTS[name]
        try:
            paths = function(results, output_dir / name)
        except MissingInputs as missing:
            report["missing"][name] = f"missing input: {missing}"
            continue
        report["built"][name] = [str(p) for p in paths]
    atomic_write_json(output_dir / "artifacts.json", report)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(BuildArgs, argv, doc=__doc__)
    try:
        report = build(args.results, args.output_dir, args.only)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, paths in report["built"].items():
        print(f"[artifacts] built {name} ({ARTIFACTS[name][0]}): {', '.join(Path(p).name for p in paths)}")
    for name, reason in report["missing"].items():
        print(f"[artifacts] skipped {name} ({ARTIFACTS[name][0]}): {reason}")
    print(f"[artifacts] {len(report['built'])} built, {len(report['missing'])} skipped -> {args.output_dir}")
    return 1 if args.strict and report["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
