"""Per-step metrics as JSONL (paper Figures 5 and 13): training loss each step, held-out loss and
perplexity at each evaluation. Append-only; on resume, records past the checkpoint being resumed are
dropped first so that no step appears twice."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from infra.files import JsonlAppender, atomic_write_jsonl, load_jsonl

METRICS_NAME = "metrics.jsonl"


def truncate_after(path: Path, step: int) -> None:
    """Keep only records up to ``step`` (those of the checkpoint a resumed run starts from)."""
    if path.exists():
        atomic_write_jsonl(path, [r for r in load_jsonl(path) if r.get("step", 0) <= step])


def metrics_record(step: int, epoch: float | None, logs: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"step": step, "epoch": None if epoch is None else round(epoch, 4)}
    for key, value in logs.items():
        if isinstance(value, (int, float)):
            record[key] = value
    if "train_runtime" in record:  # the end-of-training summary, not a step
        record["summary"] = True
        if "train_loss" in record:
            record["mean_train_loss"] = record.pop("train_loss")
    if "loss" in record:
        record["train_loss"] = record.pop("loss")
    if "eval_loss" in record:
        record["eval_perplexity"] = math.exp(min(record["eval_loss"], 50.0))
    return record


class JsonlMetricsCallback(TrainerCallback):
    """Writes every ``on_log`` event (main process only) to ``<output_dir>/metrics.jsonl``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 - transformers hook
        if not state.is_world_process_zero or not logs:
            return
        with JsonlAppender(self.path, fsync=False) as out:
            out.write(metrics_record(state.global_step, state.epoch, logs))


class LogProgressCallback(TrainerCallback):
    """Training progress in a batch log, where the Trainer's bar is off: a line every
    ``LPR_PROGRESS_SECONDS`` (infra/progress.py) with the step, the rate, the time left and the last loss."""

    def __init__(self, stream: Any = None):
        import sys

        self.stream = stream if stream is not None else sys.stderr
        self.bar: Any = None
        self.loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        from infra.progress import Progress

        if state.is_world_process_zero:
            self.bar = Progress(total=state.max_steps, initial=state.global_step, desc="train", unit="step")

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 - transformers hook
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D401 - transformers hook
        if self.bar is not None:
            self.bar.close()
            self.bar = None
