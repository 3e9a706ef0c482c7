"""Recovery-stage benchmarks (issue: self_generate and train). CPU, tiny Llama-architecture model.

    python bench/bench_recovery.py                       # both parts
    python bench/bench_recovery.py --parts generate --batch_sizes 1,8,32

1. generate: tokens/s of the hf backend at several batch sizes, same 32 prompts, same seeds, fixed length
   (stop tokens off, so every batch size generates the same number of tokens).
2. train: optimizer steps/s of QLoRA (bitsandbytes 4-bit base) versus LoRA (float32 base), same data,
   same adapter, same steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from infra.generation import HFBackend, SamplingConfig, derive_seed  # noqa: E402
from infra.modeling import load_model, load_tokenizer  # noqa: E402
from infra.study_models.tiny_models import TinyModelSpec, build_tiny_model, tiny_model_spec  # noqa: E402


def bench_generate(model_dir: Path, batch_sizes: list[int], new_tokens: int) -> dict:
    model = load_model(str(model_dir), dtype="float32", device="cpu")
    tokenizer = load_tokenizer(str(model_dir))
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"What is {i} + {i + 1}? Explain."}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for i in range(32)
    ]
    seeds = [derive_seed(0, str(i)) for i in range(len(prompts))]
    sampling = SamplingConfig(temperature=0.9, top_p=0.95, top_k=0, max_new_tokens=new_tokens)
    results = {}
    for batch_size in batch_sizes:
        backend = HFBackend(model, tokenizer, batch_size=batch_size, progress=False)
        backend.eos_token_ids = [-1]  # never stop early: equal work at every batch size
        started = time.perf_counter()
        completions = backend.generate(prompts, sampling, seeds)
        elapsed = time.perf_counter() - started
        tokens = sum(c[0].num_tokens for c in completions)
        results[f"batch_{batch_size}"] = {
            "tokens": tokens,
            "seconds": elapsed,
            "tokens_per_s": tokens / elapsed,
        }
    base = results[f"batch_{batch_sizes[0]}"]["tokens_per_s"]
    for value in results.values():
        value["speedup_vs_first"] = value["tokens_per_s"] / base
    return results


def bench_train(model_dir: Path, root: Path, steps: int) -> dict:
    from train.data import TrainingRecords
    from train.recipe import SFTRecipe
    from train.sft import build_trainer

    spec = tiny_model_spec("llama", model_dir)
    records = [
        {"id": f"r{i}", "prompt": f"Repeat {i}", "response": " ".join(["alpha beta gamma"] * 20)}
        for i in range(64)
    ]
    results = {}
    for method in ("qlora", "lora"):
        recipe = SFTRecipe(
            model=str(model_dir),
            data="unused",
            output_dir=str(root / method),
            method=method,
            load_in_4bit=method == "qlora",
            bnb_4bit_compute_dtype="float32",
            bf16=False,
            dtype="float32",
            lora_r=64,
            lora_alpha=16,
            max_steps=steps,
            warmup_steps=0,
            per_device_train_batch_size=4,
            gradient_accumulation_steps=2,
            gradient_checkpointing=True,
            save_steps=10_000,
            max_length=512,
        )
        trainer = build_trainer(
            recipe,
            spec,
            load_tokenizer(str(model_dir), padding_side="right"),
            TrainingRecords(records, [], {}),
        )
        trainer.args.disable_tqdm = True
        started = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - started
        results[method] = {"steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed}
    results["qlora_over_lora"] = results["qlora"]["steps_per_s"] / results["lora"]["steps_per_s"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="generate,train")
    parser.add_argument("--batch_sizes", default="1,8,32")
    parser.add_argument("--new_tokens", type=int, default=64)
    parser.add_argument("--train_steps", type=int, default=10)
    parser.add_argument("--hidden_size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(2)
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = root / "model"
        build_tiny_model(
            TinyModelSpec(
                arch="llama",
                num_layers=8,
                hidden_size=args.hidden_size,
                intermediate_size=2 * args.hidden_size,
            ),
            model_dir,
        )
        report["model"] = {"layers": 8, "hidden_size": args.hidden_size}
        if "generate" in args.parts:
            sizes = [int(b) for b in args.batch_sizes.split(",")]
            report["generate"] = bench_generate(model_dir, sizes, args.new_tokens)
            print(json.dumps({"generate": report["generate"]}), flush=True)
        if "train" in args.parts:
            report["train"] = bench_train(model_dir, root, args.train_steps)
            print(json.dumps({"train": report["train"]}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
