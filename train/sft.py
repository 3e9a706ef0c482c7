"""Recovery fine-tuning of a pruned model with TRL's SFTTrainer (QLoRA by default, LoRA, or full).

    python -m train.sft --recipe qlora --model outputs/llama/bi-25 --data data/alpaca.sgr.jsonl \\
        --output_dir outputs/llama/bi-25-sgr-alpaca                  # SGR (self-generated responses)
    python -m train.sft --recipe qlora --model outputs/llama/bi-25 --data data/alpaca.prompts.jsonl \\
        --output_dir outputs/llama/bi-25-sft-alpaca                  # standard SFT (dataset responses)
    accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml -m train.sft --recipe full ...

Recipes live in configs/train/ (``--recipe qlora|lora|full``); ``--config my.yaml`` and ``--key=value``
flags override them. The loss covers the assistant tokens only. Writes into --output_dir: ``checkpoint-*``
(a rerun resumes from the last one; removed after the final save unless ``--keep_checkpoints``),
``metrics.jsonl`` (train loss per step; held-out loss and perplexity once per epoch, or every ``eval_steps``
with ``--eval_strategy steps``, from step 0 with ``--eval_at_start``, on at most ``--eval_max_examples``),
``adapter/`` (LoRA, QLoRA) or ``model/`` (full, its full weights checked), ``merged/`` with ``--merge``, and
``manifest.json`` when finished. An output directory is locked while a run writes it. A recipe meant for a GPU
(4-bit QLoRA in bf16, bf16 training) stops at once without one (``infra.devices``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from infra.config import run_cli
from infra.files import atomic_write_json, output_lock
from infra.manifest import Manifest
from infra.modeling import check_causal_lm, count_parameters, decoder_layers
from infra.progress import on_terminal
from train.data import load_training_records, to_dataset
from train.merge_adapter import CARRIED_FILES, MergeArgs, lineage, merge_adapter
from train.metrics import METRICS_NAME, JsonlMetricsCallback, LogProgressCallback, truncate_after
from train.recipe import SFTRecipe, parse_recipe_cli


def quantization_config(recipe: SFTRecipe) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    options: dict[str, Any] = dict(
        load_in_4bit=True,
        bnb_4bit_quant_type=recipe.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=recipe.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=getattr(torch, recipe.bnb_4bit_compute_dtype),
    )
    if recipe.bnb_4bit_quant_storage:
        options["bnb_4bit_quant_storage"] = getattr(torch, recipe.bnb_4bit_quant_storage)
    return BitsAndBytesConfig(**options)


def load_base_model(recipe: SFTRecipe) -> Any:
    """The pruned checkpoint, 4-bit quantized for QLoRA."""
    import torch
    from transformers import AutoModelForCausalLM

    check_causal_lm(recipe.model)
    kwargs: dict[str, Any] = {}
    if Path(recipe.model).exists():
        kwargs["local_files_only"] = True
    if recipe.load_in_4bit:
        kwargs["quantization_config"] = quantization_config(recipe)
        kwargs["dtype"] = getattr(torch, recipe.bnb_4bit_compute_dtype)
        placement = device_map(torch.cuda.is_available(), os.environ.get("LOCAL_RANK"))
        if placement is not None:
            kwargs["device_map"] = placement
    else:
        kwargs["dtype"] = getattr(torch, recipe.dtype)
    model = AutoModelForCausalLM.from_pretrained(recipe.model, **kwargs)
    model.config.use_cache = False  # incompatible with gradient checkpointing; generation re-enables it
    return model


def device_map(cuda: bool, local_rank: str | None) -> dict[str, Any] | None:
    """Where a 4-bit model's weights go: the CPU without CUDA; under a launcher (DDP) each process's own GPU,
    one whole copy per process; else bitsandbytes' own placement on the visible GPU."""
    if not cuda:
        return {"": "cpu"}
    if local_rank is not None:
        return {"": int(local_rank)}
    return None


def lora_config(recipe: SFTRecipe) -> Any:
    from peft import LoraConfig

    targets = recipe.lora_target_modules
    return LoraConfig(
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules="all-linear" if targets == ["all-linear"] else targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def sft_config(recipe: SFTRecipe, has_eval: bool) -> Any:
    import torch
    from trl import SFTConfig

    return SFTConfig(
        # Without a GPU, processes started by torchrun/accelerate join one gloo group only when the
        # arguments say CPU; otherwise each would train its own copy into the same directory.
        use_cpu=not torch.cuda.is_available(),
        output_dir=recipe.output_dir,
        learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler_type,
        warmup_steps=recipe.warmup_steps,
        optim=recipe.optim,
        adam_beta1=recipe.adam_beta1,
        adam_beta2=recipe.adam_beta2,
        weight_decay=recipe.weight_decay,
        max_grad_norm=recipe.max_grad_norm,
        num_train_epochs=recipe.num_train_epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.per_device_train_batch_size,
        per_device_eval_batch_size=recipe.per_device_eval_batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        max_length=recipe.max_length,
        gradient_checkpointing=recipe.gradient_checkpointing,
        bf16=recipe.bf16,
        logging_steps=recipe.logging_steps,
        eval_strategy=recipe.eval_strategy if has_eval else "no",
        eval_steps=recipe.eval_steps,
        save_strategy="steps",
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        seed=recipe.seed,
        data_seed=recipe.seed,
        report_to=recipe.report_to,
        completion_only_loss=True,
        # On a terminal the Trainer's bar; in a batch log the lines of LogProgressCallback instead.
        disable_tqdm=not on_terminal(),
    )


def build_trainer(recipe: SFTRecipe, spec: Any, tokenizer: Any, records: Any) -> Any:
    """An SFTTrainer on the prepared records (also used by the tests to inspect the label masks). The training
    arguments exist before the model is loaded, so that under DeepSpeed ZeRO-3 the model is initialised
    partitioned (each rank holds its shard, not a whole copy)."""
    from trl import SFTTrainer

    held_out = records.eval[: recipe.eval_max_examples] if recipe.eval_max_examples else records.eval
    args = sft_config(recipe, bool(held_out))
    model = load_base_model(recipe)
    eval_dataset = to_dataset(spec, held_out, tokenizer) if held_out else None
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=to_dataset(spec, records.train, tokenizer),
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=lora_config(recipe) if recipe.uses_adapter else None,
        callbacks=[JsonlMetricsCallback(Path(recipe.output_dir) / METRICS_NAME)]
        + ([] if on_terminal() else [LogProgressCallback()]),
    )


def last_checkpoint(output_dir: Path) -> tuple[str | None, int]:
    """The newest complete checkpoint (one whose ``trainer_state.json`` parses) and its step.

    A checkpoint cut short by a kill (no or torn ``trainer_state.json``) is skipped, so training resumes
    from the one before it.
    """
    if not output_dir.is_dir():
        return None, 0
    candidates = []
    for path in output_dir.glob("checkpoint-*"):
        suffix = path.name.removeprefix("checkpoint-")
        if path.is_dir() and suffix.isdigit():
            candidates.append((int(suffix), path))
    for _, checkpoint in sorted(candidates, reverse=True):
        try:
            state = json.loads((checkpoint / "trainer_state.json").read_text())
            return str(checkpoint), int(state["global_step"])
        except (OSError, ValueError, KeyError):
            print(f"[sft] skipping incomplete checkpoint {checkpoint}")
    return None, 0


def train(recipe: SFTRecipe) -> Path:
    import torch

    from infra.model_spec import resolve_model_spec
    from infra.modeling import load_tokenizer

    torch.manual_seed(recipe.seed)
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    recipe = recipe.for_processes(processes)
    output_dir = Path(recipe.output_dir)
    records = load_training_records(
        recipe.data, recipe.eval_data, recipe.eval_fraction, recipe.seed, recipe.drop_truncated
    )
    spec = resolve_model_spec(recipe.model_config, recipe.model)
    tokenizer = load_tokenizer(recipe.model, padding_side="right")
    manifest = Manifest("train.sft", config=recipe, seeds={"seed": recipe.seed})
    manifest.add_input("model", recipe.model)
    manifest.add_input("data", recipe.data)
    if recipe.eval_data:
        manifest.add_input("eval_data", recipe.eval_data)
    manifest.extra["data_counts"] = records.counts
    batch = {
        "per_process": recipe.per_device_train_batch_size,
        "processes": processes,
        "accumulation": recipe.gradient_accumulation_steps,
    }
    batch["global"] = batch["per_process"] * processes * batch["accumulation"]
    manifest.extra["batch"] = batch
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"[sft] batch {batch['global']} = {batch['per_process']} per process x {processes} processes "
            f"x {batch['accumulation']} accumulation steps"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    with output_lock(output_dir / f".lock-rank{rank}", output_dir):
        return _train(recipe, spec, tokenizer, records, manifest, processes)


def _train(
    recipe: SFTRecipe, spec: Any, tokenizer: Any, records: Any, manifest: Manifest, processes: int
) -> Path:
    output_dir = Path(recipe.output_dir)
    trainer = build_trainer(recipe, spec, tokenizer, records)
    if trainer.args.world_size != processes:
        raise RuntimeError(
            f"launched as {processes} processes, but the trainer sees a world of {trainer.args.world_size}"
        )
    checkpoint, step = last_checkpoint(output_dir)
    metrics_path = output_dir / METRICS_NAME
    main_process = trainer.is_world_process_zero()
    if checkpoint is not None:
        if main_process:
            truncate_after(metrics_path, step)
            print(f"[sft] resuming from {checkpoint} (step {step})")
    elif main_process:
        metrics_path.unlink(missing_ok=True)
    trainer.accelerator.wait_for_everyone()  # no process logs before the metrics file is reset
    if checkpoint is None and trainer.eval_dataset is not None and recipe.eval_at_start:
        trainer.evaluate()  # step 0: the pruned model's held-out loss before any update
    trainer.train(resume_from_checkpoint=checkpoint)

    final = output_dir / ("adapter" if recipe.uses_adapter else "model")
    partial = final.with_name(final.name + ".partial")
    if getattr(trainer, "is_fsdp_enabled", False):  # gather full weights, not per-rank shards
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(partial))  # every process takes part (DeepSpeed / FSDP gather)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(partial)
        if not recipe.uses_adapter:
            for name in CARRIED_FILES:
                if (Path(recipe.model) / name).is_file():
                    shutil.copy2(Path(recipe.model) / name, partial / name)
        atomic_write_json(
            partial / "lineage.json", lineage(recipe.model, method=recipe.method, data=recipe.data)
        )
        check_saved_weights(partial, recipe.uses_adapter)
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        trained = trainer.model
        print(
            f"[sft] {recipe.method}: {len(decoder_layers(trained))} layers, "
            f"{count_parameters(trained) / 1e6:.2f}M parameters "
            f"({sum(p.numel() for p in trained.parameters() if p.requires_grad) / 1e6:.2f}M trained), "
            f"{trainer.state.global_step} steps -> {final}"
        )
        if recipe.merge and recipe.uses_adapter:
            merge_adapter(
                MergeArgs(adapter=str(final), output_dir=str(output_dir / "merged"), overwrite=True)
            )
        manifest.extra["global_step"] = trainer.state.global_step
        manifest.write(output_dir)
        if not recipe.keep_checkpoints:  # the final save holds what they did; they cost a model each
            for checkpoint_dir in output_dir.glob("checkpoint-*"):
                shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return final


def check_saved_weights(directory: Path, adapter: bool) -> None:
    """The saved model or adapter holds its full weights (an FSDP run that saved per-rank shards, or a
    DeepSpeed run without its 16-bit gather, leaves none): otherwise no manifest marks it done."""
    names = (
        ("adapter_model.safetensors", "adapter_model.bin")
        if adapter
        else (
            "model.safetensors",
            "model.safetensors.index.json",
            "pytorch_model.bin",
            "pytorch_model.bin.index.json",
        )
    )
    if not any((directory / name).is_file() for name in names):
        found = ", ".join(sorted(p.name for p in directory.iterdir())) or "nothing"
        raise RuntimeError(
            f"{directory}: no full weights were saved ({found}); for FSDP save FULL_STATE_DICT, for DeepSpeed "
            "ZeRO-3 set zero3_save_16bit_model (configs/accelerate/)"
        )


def main(argv: list[str] | None = None) -> int:
    recipe = parse_recipe_cli(argv, doc=__doc__)
    return run_cli(train, recipe)


if __name__ == "__main__":
    sys.exit(main())
