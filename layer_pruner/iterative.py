"""Greedy iterative pruning (paper Algorithm 1) and the single-layer sweep (paper Figure 1).

Candidates are made in memory (:func:`layer_pruner.inmemory.layers_removed`) or, on a vLLM engine, inside the
engine (:meth:`infra.generation.VLLMBackend.layers_removed`); no checkpoint is written per candidate. Each candidate's result is saved as soon as it finishes, as one JSON file, so that

- a rerun resumes without recomputing finished candidates, and
- SLURM array tasks can each evaluate a block of candidates sharing one engine (``candidate_block``) and a
  final run merges them.

A scorer maps a (model, tokenizer) to ``{task: {"score": float, "items": [...]}}``; the eval stage's
generative scoring provides it (:mod:`eval.scoring`), tests pass constructed ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.files import atomic_write_json, atomic_write_jsonl, read_json
from infra.layout import BASELINE, SEARCH_ORDER, SEARCH_SETTINGS, layer_name, step_name
from infra.progress import progress as progress_bar
from infra.resume import check_resume
from layer_pruner.inmemory import layers_removed

Scorer = Callable[[Any, Any], dict[str, dict[str, Any]]]


def normalized_score(scores: dict[str, float], baseline: dict[str, float]) -> float:
    """Mean over tasks of score / unpruned score (a task the unpruned model scores 0 on counts as 0)."""
    ratios = [scores[task] / baseline[task] if baseline[task] > 0 else 0.0 for task in baseline]
    return sum(ratios) / len(ratios)


# Layers the search never removes (the paper's Algorithm 1 keeps the first layer).
PROTECTED_LAYERS: tuple[int, ...] = (0,)


def search_dir_for(output_dir: str | Path) -> Path:
    """Where a search that writes ``output_dir`` keeps its state, unless told otherwise."""
    return Path(f"{output_dir}.search")


def winner(results: dict[int, float]) -> int:
    """The layer a search step removes: the highest normalized score; ties go to the later layer."""
    return max(results, key=lambda layer: (results[layer], layer))


@dataclass
class Replay:
    """A search as its files tell it (no model): the layers removed by the finished steps with their history,
    and the first step not fully scored (None when every step is) with the indices of its missing candidates
    (as ``--candidate_block`` counts them in blocks)."""

    removed: list[int]
    history: list[dict[str, Any]]
    step: int | None
    missing: list[int]


def replay(state_dir: Path, num_layers: int, n: int, protected: tuple[int, ...] = PROTECTED_LAYERS) -> Replay:
    """Walk a search's saved steps; without a baseline, step 1 is the first unfinished one."""
    state_dir = Path(state_dir)
    removed: list[int] = []
    history: list[dict[str, Any]] = []
    baseline_path = state_dir / f"{BASELINE}.json"
    baseline = read_json(baseline_path)["scores"] if baseline_path.is_file() else None
    for step in range(1, n + 1):
        candidates = [i for i in range(num_layers) if i not in removed and i not in protected]
        step_dir = state_dir / step_name(step)
        paths = [step_dir / f"{layer_name(layer)}.json" for layer in candidates]
        missing = [index for index, path in enumerate(paths) if not path.is_file()]
        if missing or baseline is None:
            return Replay(removed, history, step, missing)
        results = {
            layer: normalized_score(read_json(path)["scores"], baseline)
            for layer, path in zip(candidates, paths)
        }
        best = winner(results)
        removed.append(best)
        history.append(
            {
                "step": step,
                "removed": best,
                "score": results[best],
                "candidates": {str(k): v for k, v in results.items()},
            }
        )
    return Replay(removed, history, None, [])


def search_progress(
    state_dir: Path, num_layers: int, n: int, protected: tuple[int, ...] = PROTECTED_LAYERS
) -> tuple[int, list[int]] | None:
    """The first step not fully scored and its missing candidates' indices, or None when all ``n`` are."""
    state = replay(state_dir, num_layers, n, protected)
    return None if state.step is None else (state.step, state.missing)


def _task_scores(result: dict[str, dict[str, Any]]) -> dict[str, float]:
    return {task: float(value["score"]) for task, value in result.items()}


@dataclass
class GreedySearch:
    """Algorithm 1 with its state in ``state_dir``; the ``settings`` that change a result must match on resume
    (:func:`infra.resume.check_resume`). The number of steps is not one of them: a search of n steps is the
    first n steps of a longer one, so one search serves every pruning amount."""

    model: Any
    tokenizer: Any
    scorer: Scorer
    n: int
    state_dir: Path
    settings: dict[str, Any] = field(default_factory=dict)
    protected: tuple[int, ...] = PROTECTED_LAYERS
    progress: bool = True

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        check_resume(
            self.state_dir / SEARCH_SETTINGS,
            self.settings,
            remedy="use a new search directory (--search_dir)",
        )
        self.num_layers = len(_layers(self.model))
        self.evaluations = 0

    def _evaluate(self, path: Path, removed: list[int]) -> dict[str, float]:
        if path.exists():
            return read_json(path)["scores"]
        with _removed(self.model, removed):
            result = self.scorer(self.model, self.tokenizer)
        self.evaluations += 1
        scores = _task_scores(result)
        atomic_write_json(path, {"removed": removed, "scores": scores})
        return scores

    def baseline(self) -> dict[str, float]:
        path = self.state_dir / f"{BASELINE}.json"
        if path.exists():
            return read_json(path)["scores"]
        scores = _task_scores(self.scorer(self.model, self.tokenizer))
        self.evaluations += 1
        atomic_write_json(path, {"removed": [], "scores": scores})
        return scores

    def candidates(self, removed: list[int]) -> list[int]:
        return [i for i in range(self.num_layers) if i not in removed and i not in self.protected]

    def step_dir(self, step: int) -> Path:
        return self.state_dir / step_name(step)

    def run(
        self, candidate_block: int | None = None, block_size: int = 1
    ) -> tuple[list[int], list[dict[str, Any]]]:
        """Run (or resume) the search. With ``candidate_block``, evaluate only that block of ``block_size``
        candidates of the first unfinished step and return (an array task, one engine for the block); the
        run without it completes the search and writes its order (``order.json``)."""
        self.baseline()
        while True:
            state = replay(self.state_dir, self.num_layers, self.n, self.protected)
            if state.step is None:
                break
            candidates = self.candidates(state.removed)
            step_dir = self.step_dir(state.step)
            step_dir.mkdir(exist_ok=True)
            todo = [candidates[i] for i in state.missing]
            if candidate_block is not None:
                block = candidates[candidate_block * block_size : (candidate_block + 1) * block_size]
                todo = [layer for layer in todo if layer in block]
            for layer in progress_bar(
                todo, desc=f"iterative step {state.step}/{self.n}", disable=not self.progress, leave=False
            ):
                self._evaluate(step_dir / f"{layer_name(layer)}.json", sorted([*state.removed, layer]))
            if candidate_block is not None:
                return state.removed, state.history
        saved = read_order(self.state_dir)
        if saved is None or len(saved["removed"]) < len(state.removed):
            atomic_write_json(
                self.state_dir / SEARCH_ORDER,
                {"removed": state.removed, "history": state.history, "baseline": self.baseline(),
                 "settings": self.settings},
            )  # fmt: skip
        return state.removed, state.history


def read_order(state_dir: str | Path) -> dict[str, Any] | None:
    """A finished search's greedy order (``removed``, the layers in the order they went) and its history."""
    path = Path(state_dir) / SEARCH_ORDER
    return read_json(path) if path.is_file() else None


def search_done(state_dir: str | Path, steps: int) -> bool:
    """Whether a search has chosen at least ``steps`` layers."""
    order = read_order(state_dir)
    return order is not None and len(order["removed"]) >= steps


def _layers(model: Any) -> Any:
    if hasattr(model, "num_layers") and hasattr(
        model, "layers_removed"
    ):  # a vLLM engine (in-engine candidates)
        return range(model.num_layers)
    from infra.modeling import decoder_layers

    return decoder_layers(model)


def candidate_model(
    model: str,
    backend: str,
    spec: Any,
    dtype: str = "auto",
    device: str = "auto",
    tensor_parallel_size: int = 1,
) -> Any:
    """What candidates are made from: a transformers model (``hf``), or a vLLM engine started once with
    in-engine candidates (``vllm``; the search's context, the model's stop tokens)."""
    from infra.generation import resolve_backend

    if resolve_backend(backend) == "vllm":
        from infra.generation import VLLMBackend
        from infra.task_registry import task_context

        return VLLMBackend(
            model,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=task_context(spec, "search", model=model),
            stop_tokens=spec.stop_tokens,
            candidates=True,
        )
    from infra.modeling import load_model

    return load_model(model, dtype=dtype, device=device)


def _removed(model: Any, removed: list[int]) -> Any:
    """A candidate: in memory for a transformers model, inside the engine for a vLLM backend."""
    if hasattr(model, "layers_removed"):
        return model.layers_removed(removed)
    return layers_removed(model, removed)


def single_layer_sweep(
    model: Any,
    tokenizer: Any,
    scorer: Scorer,
    output_dir: Path,
    *,
    layers: list[int] | None = None,
    skip_first: bool = True,
    progress: bool = True,
    baseline: bool | None = None,
) -> dict[int, dict[str, float]]:
    """Remove each layer alone; write ``layer_XXX.json`` (scores) and ``layer_XXX.<task>.jsonl`` (responses).

    ``layers`` restricts the sweep (e.g. one per SLURM array task); finished layers are skipped on rerun.
    The unpruned model's scores go to ``baseline.json``, by default when every layer is swept (``baseline``
    chooses explicitly).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    num_layers = len(_layers(model))
    if baseline is None:
        baseline = layers is None
    if layers is None:
        layers = list(range(1 if skip_first else 0, num_layers))
    targets = [None, *layers] if baseline else list(layers)
    results: dict[int, dict[str, float]] = {}
    for layer in progress_bar(targets, desc="single-layer sweep", disable=not progress):
        name = BASELINE if layer is None else layer_name(layer)
        path = output_dir / f"{name}.json"
        if path.exists():
            if layer is not None:
                results[layer] = read_json(path)["scores"]
            continue
        if layer is None:
            result = scorer(model, tokenizer)
        else:
            if not 0 <= layer < num_layers:
                raise ValueError(f"layer {layer} out of range (the model has {num_layers} layers)")
            with _removed(model, [layer]):
                result = scorer(model, tokenizer)
        for task, value in result.items():
            atomic_write_jsonl(output_dir / f"{name}.{task}.jsonl", value.get("items", []))
        scores = _task_scores(result)
        atomic_write_json(path, {"removed": [] if layer is None else [layer], "scores": scores})
        if layer is not None:
            results[layer] = scores
    return results
