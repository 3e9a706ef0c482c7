"""Training recipes: ``configs/train/<recipe>.yaml`` parsed into :class:`SFTRecipe`, then overridden.

Precedence (lowest first): the dataclass defaults, the named recipe (``--recipe qlora``), a YAML given with
``--config``, and ``--key=value`` flags.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigError, from_dict, help_text, load_yaml, set_dotted, split_overrides
from infra.paths import REPO_ROOT

RECIPE_DIR = REPO_ROOT / "configs" / "train"
METHODS = ("qlora", "lora", "full")


@dataclass
class SFTRecipe:
    model: str = field(metadata={"help": "pruned checkpoint directory (or hub id)"})
    data: str = field(metadata={"help": "JSONL with prompt and response (prepare or generate output)"})
    output_dir: str
    recipe: str = field(default="qlora", metadata={"help": "configs/train/<recipe>.yaml"})
    method: str = "qlora"
    model_config: str | None = field(default=None, metadata={"help": "configs/models name"})
    eval_data: str | None = field(default=None, metadata={"help": "held-out JSONL; else eval_fraction"})
    eval_fraction: float = 0.1
    drop_truncated: bool = field(default=False, metadata={"help": "skip responses cut at max_new_tokens"})
    # Quantization (QLoRA)
    load_in_4bit: bool = True
    bnb_4bit_quant_type: str = "nf4"
    bnb_4bit_use_double_quant: bool = True
    bnb_4bit_compute_dtype: str = "bfloat16"
    bnb_4bit_quant_storage: str | None = field(
        default=None, metadata={"help": "bfloat16 for DeepSpeed ZeRO-3 / FSDP sharding of a 4-bit model"}
    )
    # LoRA
    lora_r: int = 64
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    # Optimization
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "constant_with_warmup"
    warmup_steps: int = 50
    optim: str = "adamw_torch"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.99
    weight_decay: float = 1e-4
    max_grad_norm: float = 1.0
    num_train_epochs: float = 2.0
    max_steps: int = -1
    per_device_train_batch_size: int = 4
    per_device_eval_batch_size: int = 4
    gradient_accumulation_steps: int = 2
    global_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "examples per optimizer step over all processes; when set, the per-process batch and "
            "the accumulation steps are derived from it and the number of processes (full: 8, as the "
            "original's one process ran 4 x 2)"
        },
    )
    max_length: int = 8192
    gradient_checkpointing: bool = True
    bf16: bool = True
    dtype: str = field(default="bfloat16", metadata={"help": "weights of the (unquantized) model"})
    # Held-out evaluation
    eval_strategy: str = field(
        default="epoch",
        metadata={"help": "epoch (once per epoch, as the original) or steps (every eval_steps)"},
    )
    eval_steps: int = 50
    eval_at_start: bool = field(default=False, metadata={"help": "also before the first update (step 0)"})
    eval_max_examples: int | None = field(
        default=None, metadata={"help": "evaluate on at most this many held-out examples (the first, seeded)"}
    )
    # Bookkeeping
    logging_steps: int = 1
    save_steps: int = 200
    save_total_limit: int = 2
    keep_checkpoints: bool = field(
        default=False, metadata={"help": "keep the checkpoint-* directories after the final save"}
    )
    merge: bool = field(default=False, metadata={"help": "also write <output_dir>/merged"})
    seed: int = 42
    report_to: str = "none"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"key 'method': expected one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method != "qlora" and self.load_in_4bit:
            raise ConfigError(f"key 'load_in_4bit': only the qlora method quantizes (method {self.method!r})")
        if self.method == "qlora" and not self.load_in_4bit:
            raise ConfigError("key 'load_in_4bit': the qlora method needs load_in_4bit: true")
        if not 0 <= self.eval_fraction < 1:
            raise ConfigError(f"key 'eval_fraction': must be in [0, 1), got {self.eval_fraction}")
        for key in ("bnb_4bit_compute_dtype", "dtype"):
            if getattr(self, key) not in ("float32", "bfloat16", "float16"):
                raise ConfigError(f"key {key!r}: expected float32, bfloat16 or float16")
        if self.bnb_4bit_quant_type not in ("nf4", "fp4"):
            raise ConfigError(
                f"key 'bnb_4bit_quant_type': expected nf4 or fp4, got {self.bnb_4bit_quant_type!r}"
            )
        if self.lora_r < 1 or self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ConfigError(
                "lora_r, per_device_train_batch_size and gradient_accumulation_steps must be >= 1"
            )

        if self.eval_strategy not in ("epoch", "steps"):
            raise ConfigError(f"key 'eval_strategy': expected epoch or steps, got {self.eval_strategy!r}")
        if self.eval_max_examples is not None and self.eval_max_examples < 1:
            raise ConfigError(f"key 'eval_max_examples': must be >= 1, got {self.eval_max_examples}")
        if self.global_batch_size is not None and self.global_batch_size < 1:
            raise ConfigError(f"key 'global_batch_size': must be >= 1, got {self.global_batch_size}")

    @property
    def uses_adapter(self) -> bool:
        return self.method in ("qlora", "lora")

    def for_processes(self, processes: int) -> SFTRecipe:
        """The recipe with the batch laid out over ``processes`` so that an optimizer step still sees
        ``global_batch_size`` examples: the largest per-process batch up to the recipe's that divides the
        per-process share, the rest as gradient accumulation. Unchanged when no global batch is set."""
        total = self.global_batch_size
        if total is None:
            return self
        if total % processes:
            raise ConfigError(f"key 'global_batch_size': {total} does not divide over {processes} processes")
        share = total // processes
        per_device = next(
            b for b in range(min(self.per_device_train_batch_size, share), 0, -1) if share % b == 0
        )
        return dataclasses.replace(
            self, per_device_train_batch_size=per_device, gradient_accumulation_steps=share // per_device
        )


def check_devices(recipe: SFTRecipe) -> None:
    """A recipe meant for a GPU (4-bit QLoRA layers, bf16) stops without one; so does any run in a SLURM job
    given GPUs. The CPU studies train in float32 without bf16 and run as before."""
    from infra.devices import check_gpu_job, require_cuda

    check_gpu_job("train.sft")
    if recipe.load_in_4bit and recipe.bnb_4bit_compute_dtype == "bfloat16":
        require_cuda("QLoRA's 4-bit layers compute in bfloat16 (bnb_4bit_compute_dtype)")
    if recipe.bf16:
        require_cuda("the recipe trains in bf16 (bf16: true)")


def recipe_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        return path
    return RECIPE_DIR / f"{name}.yaml"


def load_recipe(argv: Sequence[str]) -> SFTRecipe:
    """Defaults < ``--recipe`` file < ``--config`` file < flags; errors name the file and key."""
    config_path, overrides = split_overrides(argv)
    config_data = load_yaml(config_path) if config_path else {}
    name = overrides.get("recipe", config_data.get("recipe", "qlora"))
    path = recipe_path(str(name))
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")))
        raise ConfigError(f"{path}: no such training recipe (known: {known})")
    data: dict[str, Any] = {**load_yaml(path), "recipe": str(name)}
    data.update(config_data)
    for key, value in overrides.items():
        set_dotted(data, key, value)
    sources = " + ".join(str(p) for p in (path, config_path) if p) + " + command line"
    return from_dict(SFTRecipe, data, sources)


def parse_recipe_cli(argv: Sequence[str] | None = None, doc: str | None = None) -> SFTRecipe:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in argv):
        print((doc or "").strip() + "\n")
        print(help_text(SFTRecipe))
        raise SystemExit(0)
    try:
        recipe = load_recipe(argv)
        check_devices(recipe)
        return recipe
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
