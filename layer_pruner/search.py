"""The greedy iterative search (paper Algorithm 1), once per model and search-task set: its order of removed
layers serves every pruning amount as a prefix (2 layers, 10%, 15% and 25% are its first 2, 3, 5 and 8
layers on Llama), as the original ran one 8-iteration search.

    python -m layer_pruner.search --model meta-llama/Llama-3.1-8B-Instruct --model_config llama-3.1-8b-instruct \\
        --ratio 0.25 --output_dir outputs/llama-3.1-8b-instruct/search/iterative-gsm8k+humaneval+xsum
    python -m layer_pruner.search ... --baseline_only                       # the unpruned model's scores
    python -m layer_pruner.search ... --block_size 4 --candidate_block 2    # one SLURM array task
    python -m layer_pruner.prune --method iterative --n 2 --search_dir <the search> ...   # a prefix of it

Candidates are made in memory (``--backend hf``) or inside one vLLM engine (``vllm``); each candidate's scores
are saved as soon as they are known, so a rerun resumes and SLURM array tasks (a block of candidates each,
sharing one engine) and a final run share one directory. The finished search writes ``order.json`` (the
layers in the order they were removed, each step's scores) and a manifest. A search continued with more
steps keeps the steps it has; other settings that change a result are refused.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, parse_cli, report_error
from infra.generation import BACKENDS
from infra.manifest import Manifest
from infra.modeling import ModelLoadError, check_causal_lm
from infra.task_registry import registry


@dataclass(kw_only=True)
class CandidateScoring:
    """How pruning candidates are scored (the search's and the sweep's): the model, the tasks' items, the
    sampling, the backend candidates are made in."""

    model: str = field(metadata={"help": "hub id or local checkpoint"})
    model_config: str | None = field(default=None, metadata={"help": "configs/models name (prompts, stops)"})
    tasks: list[str] = field(
        default_factory=lambda: list(registry().search_tasks),
        metadata={"help": "the tasks candidates are scored on (configs/tasks/generative.yaml)"},
    )
    n_items: int | None = field(
        default=None, metadata={"help": "items per task (default: the registry's 100)"}
    )
    data: list[str] = field(default_factory=list, metadata={"help": "task=file for local task data"})
    max_new_tokens: int = 8192
    temperature: float = 0.9
    top_p: float = 1.0
    top_k: int = 50
    gen_batch_size: int = 8
    backend: str = field(
        default="auto",
        metadata={"help": "auto (vllm on a GPU node), hf or vllm (candidates inside the engine)"},
    )
    tensor_parallel_size: int = 1
    seed: int = 0
    device: str = "auto"
    dtype: str = field(
        default="auto",
        metadata={"help": "the model's dtype (auto: the checkpoint's; the scripts pass the model config's)"},
    )

    def check_backend(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"key 'backend': expected one of {', '.join(BACKENDS)}, got {self.backend!r}")

    def scoring_settings(self) -> dict[str, Any]:
        """Every setting that changes a candidate's score (a resumed search or sweep compares them all)."""
        return {
            "model": self.model,
            "model_config": self.model_config,
            "tasks": list(self.tasks),
            "n_items": self.n_items,
            "data": sorted(self.data),
            "seed": self.seed,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "dtype": self.dtype,
            "backend": _resolved_backend(self.backend),
            "gen_batch_size": self.gen_batch_size,
        }

    def candidates(self, spec: Any) -> tuple[Any, Any, Any]:
        """The scorer, what candidates are made from (a model, or a vLLM engine) and the tokenizer."""
        from eval.scoring import build_scorer
        from infra.modeling import load_tokenizer
        from layer_pruner.iterative import candidate_model

        scorer = build_scorer(
            spec, self.tasks, n_items=self.n_items, data=self.data, seed=self.seed,
            max_new_tokens=self.max_new_tokens, batch_size=self.gen_batch_size, temperature=self.temperature,
            top_p=self.top_p, top_k=self.top_k, model=self.model,
        )  # fmt: skip
        model = candidate_model(
            self.model, self.backend, spec, self.dtype, self.device, self.tensor_parallel_size
        )
        return scorer, model, load_tokenizer(self.model)


@dataclass(kw_only=True)
class SearchOptions(CandidateScoring):
    """What a search is scored with (shared by ``layer_pruner.search`` and ``layer_pruner.prune``)."""

    search_dir: str | None = field(
        default=None, metadata={"help": "the search's state (default: beside the output)"}
    )
    candidate_block: int | None = field(
        default=None,
        metadata={"help": "score only this block of candidates of the first unfinished step (an array task)"},
    )
    block_size: int = field(default=1, metadata={"help": "candidates per block (--candidate_block)"})
    baseline_only: bool = field(default=False, metadata={"help": "score only the unpruned model"})

    def check_search(self) -> None:
        self.check_backend()
        if self.block_size < 1:
            raise ConfigError(f"key 'block_size': expected >= 1, got {self.block_size}")
        if self.candidate_block is not None and self.candidate_block < 0:
            raise ConfigError(f"key 'candidate_block': expected >= 0, got {self.candidate_block}")


def _resolved_backend(backend: str) -> str:
    from infra.generation import resolve_backend

    return resolve_backend(backend)


def run_search(options: SearchOptions, n: int, search_dir: Path) -> dict[str, Any] | None:
    """Run (or resume) the search to ``n`` steps in ``search_dir``; its order and history, or None when this
    run only scored part of it (the baseline, or one block of candidates)."""
    from infra.model_spec import load_model_spec
    from layer_pruner.iterative import GreedySearch

    if options.model_config is None:
        raise ConfigError("key 'model_config': the iterative search needs --model_config for its prompts")
    scorer, model, tokenizer = options.candidates(load_model_spec(options.model_config))
    search = GreedySearch(model, tokenizer, scorer, n, search_dir, settings=options.scoring_settings())
    if options.baseline_only:
        search.baseline()
        return None
    removed, history = search.run(options.candidate_block, options.block_size)
    if len(removed) < n:
        return None  # an array task scored its block; the final run completes the step
    return {"removed": removed, "history": history, "baseline": search.baseline()}


def prefix(search_dir: str | Path, n: int) -> list[int] | None:
    """The first ``n`` layers of a finished search's order (None when it has fewer)."""
    from layer_pruner.iterative import read_order

    order = read_order(search_dir)
    if order is None or len(order["removed"]) < n:
        return None
    return list(order["removed"][:n])


@dataclass(kw_only=True)
class SearchArgs(SearchOptions):
    output_dir: str = field(metadata={"help": "the search's directory (its state, order.json, manifest)"})
    steps: int | None = field(default=None, metadata={"help": "layers to remove (the largest amount's)"})
    ratio: float | None = field(default=None, metadata={"help": "or a share of the layers (0.25)"})

    def __post_init__(self) -> None:
        self.check_search()
        if (self.steps is None) == (self.ratio is None):
            raise ConfigError("give exactly one of --steps or --ratio")
        if self.search_dir is not None:
            raise ConfigError("key 'search_dir': the search's directory is --output_dir")


def main(argv: list[str] | None = None) -> int:
    from layer_pruner.plan import PlanError, layers_to_remove

    args = parse_cli(SearchArgs, argv, doc=__doc__, gpu_stage=True)
    output_dir = Path(args.output_dir)
    try:
        config = check_causal_lm(args.model)
        n = layers_to_remove(config.num_hidden_layers, n=args.steps, ratio=args.ratio)
        result = run_search(args, n, output_dir)
    except (ConfigError, PlanError, ModelLoadError, FileNotFoundError, ValueError) as error:
        return report_error(error)
    if result is None:
        print(f"[search] scored part of the search in {output_dir}")
        return 0
    Manifest("layer_pruner.search", config=args, seeds={"seed": args.seed}).write(output_dir)
    print(f"[search] order of {len(result['removed'])} layers: {result['removed']} -> {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
