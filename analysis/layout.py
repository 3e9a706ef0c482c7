"""Where the result files of one model's study live, as the scripts in ``scripts/`` write them.

    <results>/
      base/eval/                      generative <task>.json + <task>.jsonl, classification.json
      pruned/<method>-<amount>/eval/  e.g. bi-25pct, reverse-25pct, iterative-2layers
      recovered/<method>-<amount>-<recovery>-<data>[-<recipe>]/
          eval/                       e.g. bi-25pct-sgr-alpaca, reverse-25pct-sft-dolci, bi-25pct-sgr-dolci-lora
          train/metrics.jsonl         per-step loss, held-out loss and perplexity
      sweep/                          layer_pruner.sweep: baseline.json, layer_XXX.json, layer_XXX.<task>.jsonl
      probe/<run>/arithmetic_probe.json   run = base (all layers ablated), or a pruned / recovered run
      bi_profile/bi_profile.json
      upper_bound/pruned/{model,eval}  GSM8K upper bound (appendix A.6.2, Figure 11): the GSM8K-searched model,
      upper_bound/sgr<n>-<recipe>/    and its fine-tuned runs, e.g. sgr8-qlora, sgr8-full (train/, eval/)

Run names are the repository's own scheme (``<method>-<amount>[-<recovery>-<data>[-<recipe>]]``, amount
``25pct`` or ``2layers``; the recipe only when it is not the grid's default, ``infra/experiments.py``) and are
parsed here, in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUN_NAME = re.compile(
    r"^(?P<method>[a-z_]+)-(?P<amount>\d+(?:pct|layers))"
    r"(?:-(?P<recovery>sft|sgr)-(?P<data>[a-z0-9_]+)(?:-(?P<recipe>[a-z0-9_]+))?)?$"
)
METHOD_LABELS = {
    "reverse": "Reverse-order",
    "bi": "Block influence",
    "bi_shortgpt": "BI (ShortGPT)",
    "angular": "Angular",
    "iterative": "Iterative",
    "layers": "Fixed layers",
}
RECOVERY_LABELS = {"sft": "SFT", "sgr": "SGR"}  # SFT: the dataset's own responses
RECIPE_LABELS = {"qlora": "QLoRA", "lora": "LoRA", "full": "full FT"}


@dataclass(frozen=True)
class RunName:
    name: str
    method: str
    amount: str
    recovery: str | None = None
    data: str | None = None
    recipe: str | None = None  # None: the grid's default recipe

    @property
    def amount_value(self) -> float:
        """Percent for ``25pct``; for ``2layers`` the layer count (plotted on a separate axis label)."""
        return float(re.match(r"\d+", self.amount).group())

    @property
    def is_percent(self) -> bool:
        return self.amount.endswith("pct")

    @property
    def label(self) -> str:
        count = self.amount_value
        amount = f"{count:g}%" if self.is_percent else f"{count:g} layer{'' if count == 1 else 's'}"
        text = f"{METHOD_LABELS.get(self.method, self.method)} {amount}"
        if self.recovery:
            text += f" + {RECOVERY_LABELS[self.recovery]} ({self.data})"
        if self.recipe:
            text += f" [{RECIPE_LABELS.get(self.recipe, self.recipe)}]"
        return text


def parse_run_name(name: str) -> RunName | None:
    match = RUN_NAME.match(name)
    if match is None:
        return None
    return RunName(name=name, **match.groupdict())


class ResultsLayout:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def base_eval(self) -> Path:
        return self.root / "base" / "eval"

    def run_dir(self, name: str) -> Path:
        """Where a grid run lives: ``pruned/<name>`` without recovery, else ``recovered/<name>``."""
        run = parse_run_name(name)
        if run is None:
            raise ValueError(f"{name!r} is not a run name")
        return self.root / ("recovered" if run.recovery else "pruned") / name

    def grid_runs(self, names: list[str]) -> dict[RunName, Path]:
        """The runs of ``names`` (a grid's, in grid order) that have an ``eval`` directory."""
        found = {}
        for name in names:
            directory = self.run_dir(name)
            if (directory / "eval").is_dir():
                found[parse_run_name(name)] = directory
        return found

    def runs(self, kind: str) -> dict[RunName, Path]:
        """``pruned`` or ``recovered`` runs with an ``eval`` directory, by parsed name (others ignored)."""
        found = {}
        parent = self.root / kind
        if parent.is_dir():
            for directory in sorted(parent.iterdir()):
                run = parse_run_name(directory.name)
                if run is not None and (directory / "eval").is_dir():
                    found[run] = directory
        return found

    @property
    def sweep(self) -> Path:
        return self.root / "sweep"

    def probe(self, run: str) -> Path:
        return self.root / "probe" / run / "arithmetic_probe.json"

    @property
    def bi_profile(self) -> Path:
        return self.root / "bi_profile" / "bi_profile.json"

    def subruns(self, kind: str) -> dict[str, Path]:
        parent = self.root / kind
        return {p.name: p for p in sorted(parent.iterdir()) if p.is_dir()} if parent.is_dir() else {}
