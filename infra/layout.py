"""Where the result files of one model's study live: the one layout that the stage plan writes
(``orchestration.plan``) and the tables, figures and findings read (``analysis``).

    <results>/
      base/eval/                      generative <task>.json + <task>.jsonl, classification/
      pruned/<method>-<amount>/model  the pruned model (layer_pruner.prune), e.g. bi-25pct, iterative-2layers
      pruned/<method>-<amount>/eval/
      recovered/<run name>/           e.g. bi-25pct-sgr-alpaca, reverse-25pct-sft-dolci, bi-25pct-sgr-dolci-lora
          train/                      adapter/ or model/, metrics.jsonl (per-step loss, held-out loss, perplexity)
          eval/
      data/<dataset>.prompts.jsonl    sampled fine-tuning prompts with the dataset's responses (SFT data)
      data/<dataset>.sgr[<n>].jsonl   the unpruned model's responses (SGR data)
      search/iterative-<tasks>/       layer_pruner.search: the greedy search on those tasks (order.json), which
                                      every iterative amount's pruned model takes its first layers from
      sweep/                          layer_pruner.sweep: baseline.json, layer_XXX.json, layer_XXX.<task>.jsonl
      probe/<run>/arithmetic_probe.json   run = base (all layers ablated), or a pruned / recovered run
      bi_profile/bi_profile.json
      upper_bound/pruned/{model,eval}  GSM8K upper bound (appendix A.6.2, Figure 11): the GSM8K-searched model,
      upper_bound/sgr<n>-<recipe>/    and its fine-tuned runs, e.g. sgr8-qlora, sgr8-full (train/, eval/)
      released/<pair>/{parent,pruned}/  a released pruned model and its parent (configs/released): eval/, probe/,
                                      degeneration.json
      toy_model_greedy/               the toy study's greedy scores of the unpruned model
      artifacts/                      tables, figures, findings.json (analysis.build_artifacts)

A stage's output directory is complete when its ``manifest.json`` is present, a file output when
``<file>.manifest.json`` is. Run names: :class:`infra.experiments.Run` and ``parse_run_name``. The names of
the files inside a stage's output (a sweep's or a search's per-layer files, the probe's and the profile's
results) are the functions and constants below; the stages and the tables ask them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from infra.experiments import Run, parse_run_name
from infra.paths import REPO_ROOT

MANIFEST = "manifest.json"
PROBE_RESULT = "arithmetic_probe.json"
BI_PROFILE_RESULT = "bi_profile.json"
BASELINE = "baseline"  # a sweep's or a search's unpruned scores: baseline.json
SWEEP_SUMMARY = "sweep.json"
SWEEP_SETTINGS = "settings.json"  # what a sweep's layer files were scored with (infra.resume)
SEARCH_SETTINGS = "search.json"
SEARCH_ORDER = "order.json"


def layer_name(layer: int) -> str:
    """A sweep's or a search step's file stem for one removed layer: ``layer_007``."""
    return f"layer_{layer:03d}"


def unscored_layers(directory: str | Path, layers: Iterable[int]) -> list[int]:
    """Of ``layers``, those without their ``layer_XXX.json`` in a sweep's ``directory``."""
    return [layer for layer in layers if not (Path(directory) / f"{layer_name(layer)}.json").is_file()]


def step_name(step: int) -> str:
    """A search step's directory: ``step_01``."""
    return f"step_{step:02d}"


def layer_of(stem: str) -> int | None:
    """The layer of a ``layer_XXX`` stem, None for another name."""
    prefix = "layer_"
    return int(stem[len(prefix) :]) if stem.startswith(prefix) and stem[len(prefix) :].isdigit() else None


class ResultsLayout:
    """Paths under one model's results root. The ``*_dir``/string helpers give the paths as the plan writes
    them into stage commands (relative to the repository when the root is)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _text(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))

    # --- completeness --------------------------------------------------------------------------------------
    @staticmethod
    def done(output: str | Path) -> bool:
        """A directory output is complete when its manifest.json is present."""
        return (REPO_ROOT / output / MANIFEST).is_file()

    @staticmethod
    def file_done(output: str | Path) -> bool:
        """A file output is complete when ``<file>.manifest.json`` is present."""
        return (REPO_ROOT / f"{output}.manifest.json").is_file()

    # --- what the stages write -----------------------------------------------------------------------------
    @property
    def base_run(self) -> str:
        return self._text("base")

    def pruned_run(self, method: str, amount: str) -> str:
        return self._text("pruned", f"{method}-{amount}")

    def pruned_model(self, method: str, amount: str) -> str:
        return self._text("pruned", f"{method}-{amount}", "model")

    def recovered_run(self, name: str) -> str:
        return self._text("recovered", name)

    def search_dir(self, tasks: list[str]) -> str:
        """The greedy search on ``tasks`` (every iterative amount's layers are a prefix of its order)."""
        return self._text("search", "iterative-" + "+".join(tasks))

    def released(self, pair: str, which: str) -> str:
        """A released pruned model (``pruned``) or its parent (``parent``) of a pair (configs/released)."""
        return self._text("released", pair, which)

    def prompts(self, dataset: str) -> str:
        return self._text("data", f"{dataset}.prompts.jsonl")

    def sgr(self, dataset: str, samples: str | int = 1) -> str:
        return self._text("data", f"{dataset}.sgr{'' if str(samples) == '1' else samples}.jsonl")

    def probe_dir(self, run: str) -> str:
        return self._text("probe", run)

    @property
    def sweep_dir(self) -> str:
        return self._text("sweep")

    @property
    def bi_profile_dir(self) -> str:
        return self._text("bi_profile")

    @property
    def greedy(self) -> str:
        return self._text("toy_model_greedy")

    @property
    def upper_bound_pruned(self) -> str:
        return self._text("upper_bound", "pruned")

    def upper_bound_run(self, samples: str | int, recipe: str) -> str:
        return self._text("upper_bound", f"sgr{samples}-{recipe}")

    @property
    def artifacts(self) -> str:
        return self._text("artifacts")

    # --- what the tables, figures and findings read --------------------------------------------------------
    @property
    def base_eval(self) -> Path:
        return self.root / "base" / "eval"

    def run_dir(self, name: str) -> Path:
        """Where a grid run lives: ``pruned/<name>`` without recovery, else ``recovered/<name>``."""
        run = parse_run_name(name)
        if run is None:
            raise ValueError(f"{name!r} is not a run name")
        return self.root / ("recovered" if run.recovery else "pruned") / name

    def grid_runs(self, names: list[str]) -> dict[Run, Path]:
        """The runs of ``names`` (a grid's, in grid order) that have an ``eval`` directory."""
        found = {}
        for name in names:
            directory = self.run_dir(name)
            if (directory / "eval").is_dir():
                found[parse_run_name(name)] = directory
        return found

    def runs(self, kind: str) -> dict[Run, Path]:
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
        return self.root / "probe" / run / PROBE_RESULT

    @property
    def bi_profile(self) -> Path:
        return self.root / "bi_profile" / BI_PROFILE_RESULT

    def subruns(self, kind: str) -> dict[str, Path]:
        parent = self.root / kind
        return {p.name: p for p in sorted(parent.iterdir()) if p.is_dir()} if parent.is_dir() else {}
