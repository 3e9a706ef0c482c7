"""The toy model: a small Llama-architecture model trained from scratch on CPU on the toy tasks.

    python -m infra.study_models.toy_model                                  # builds .cache/models/toy-llama (cached)
    python -m infra.study_models.toy_model --steps 300 --output_dir /tmp/toy  # a quicker, weaker one
    python -m infra.study_models.toy_model --force                          # trains it here (about 400 s)

Training text: chat conversations (the model's chat template, the eval prompts of configs/prompts) for the
three toy tasks, answered in the model's own style, raw few-shot blocks in the arithmetic probe's
"Question: ... / Answer: ..." format, and raw passages written twice (trained on the repeat, they teach
copying from the context early). Texts are packed best-fit into blocks. The tokenizer splits digits.
Deterministic given the seed: a rebuild on one machine gives the same weights, byte for byte; rebuilt only
when the recipe changes (``toy.json`` records it, with the final loss). The default recipe's model (seed 0)
ships with the repository (``infra/study_models/toy_llama``, as this module trained it on 2 CPU cores) and is
copied instead of trained, so that every machine starts the toy study from the same weights; ``--force``
trains it here, and another seed or recipe is always trained. Also writes the toy tasks' items to
``<cache>/toy/data`` (the classification items rendered with the model's chat template) and an instruction
set for recovery fine-tuning (``toy_instructions.jsonl``, Alpaca schema, dataset-style answers); none of
them depends on the model's seed.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config import parse_cli
from infra.files import atomic_directory, atomic_write_json, atomic_write_jsonl
from infra.paths import REPO_ROOT, cache_dir
from infra.progress import progress as progress_bar
from infra.study_models.tiny_models import (
    CHAT_TEMPLATES,
    LLAMA_DATE_HEADER,
    TinyModelSpec,
    build_config,
    build_tokenizer,
)
from infra.study_models.toy_tasks import (
    TOY_TASKS,
    WORDS,
    arithmetic_problem,
    copy_problem,
    dataset_answer,
    model_answer,
    task_records,
    write_choice_task,
    write_task_data,
)

if TYPE_CHECKING:
    from infra.model_spec import ModelSpec

TOY_MODEL_CONFIG = "toy-llama"
INSTRUCTIONS = 400  # prompts of the toy instruction set (recovery fine-tuning)


@dataclass
class ToyModelArgs:
    output_dir: str = field(default="", metadata={"help": "default: <cache>/models/toy-llama"})
    data_dir: str = field(default="", metadata={"help": "toy task items; default: <cache>/toy/data"})
    num_layers: int = 8
    # 64 wide, 2 heads of 32 (vLLM's CPU attention needs head_dim >= 32): a third of the compute of a
    # 128-wide model per step, and on the toy tasks as good for the steps a CPU can afford.
    hidden_size: int = 64
    intermediate_size: int = 192
    num_heads: int = 2
    # At 1024 (about 830 filled) every toy word is one token and a training conversation (with the date
    # header, see TOY_CHAT_TEMPLATE) 92 tokens instead of 126, but copying from the context formed later:
    # seed 0 had not learnt it by step 3,250.
    vocab_size: int = 512
    # At 3,000 steps seeds 0-2 score 0.95-1.00 at greedy decoding on every task; seed 2's loss fell from
    # 0.31 to 0.17 between steps 2,250 and 2,750, so fewer would be at the edge.
    steps: int = 3000
    batch_size: int = 8
    block_size: int = 256
    learning_rate: float = 3e-3
    warmup_steps: int = 60
    train_examples: int = 12000
    repeat_every: int = 2
    seed: int = 0
    threads: int = 2
    force: bool = False


# Bumped whenever the toy data, tokenizer corpus or packing change, so a cached model of older code is rebuilt.
RECIPE_VERSION = 4

# Llama-3's chat template without the date header its system turn always carries: with the toy's 512-token
# vocabulary the header took 50 of a training conversation's 127 tokens, and without it a block holds more
# examples: seed 0's loss fell below 0.6 by step 1,250 instead of step 2,250.
TOY_CHAT_TEMPLATE = CHAT_TEMPLATES["llama"].replace(LLAMA_DATE_HEADER, "")


def recipe_key(args: ToyModelArgs) -> dict:
    key = {k: v for k, v in asdict(args).items() if k not in ("output_dir", "data_dir", "threads", "force")}
    return {**key, "version": RECIPE_VERSION}


def probe_block(rng: random.Random, shots: int = 4) -> str:
    lines = []
    for _ in range(shots):
        question, answer = arithmetic_problem(rng)
        lines.append(f"Question: {question}\nAnswer: {answer}")
    return "\n".join(lines) + "\n"


def repeat_block(rng: random.Random) -> tuple[str, int]:
    """A raw passage of toy sentences written twice, trained on its second half, which only copying can
    predict: the kind of text on which language models learn to copy from their context (the copy task and
    the carried intermediate result of the arithmetic need it). Returns the text and where training starts."""
    passage = " ".join(copy_problem(rng)[0] for _ in range(2)) + "\n"
    return passage + passage, len(passage)


def training_texts(tokenizer, spec, count: int, seed: int, repeat_every: int = 2) -> list[tuple[str, int]]:
    """Chat conversations for each toy task (the eval prompts, the model's style), raw probe blocks and raw
    repeated passages, each with the character offset where the loss starts (the answer of a conversation,
    the whole of a probe block, the second half of a repeated passage)."""
    from infra.prompts import build_messages

    rng = random.Random(seed)
    per_task = {task: task_records(task, count, seed + 100) for task in TOY_TASKS}
    texts = []
    for index in range(count):
        task = TOY_TASKS[index % len(TOY_TASKS)]
        record = per_task[task][index]
        fields = {**record}
        messages = build_messages(spec, spec.prompt(task), fields)
        messages.append({"role": "assistant", "content": model_answer(task, record)})
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        texts.append((text, text.rindex(spec.response_template) + len(spec.response_template)))
        if index % 3 == 0:
            texts.append((probe_block(rng), 0))
        if repeat_every and index % repeat_every == 0:
            texts.append(repeat_block(rng))
    rng.shuffle(texts)
    return texts


def pack(
    tokenizer, texts: list[tuple[str, int]], block_size: int, open_blocks: int = 16
) -> tuple[list, list]:
    """Token blocks and their labels (-100 before each text's training offset and on padding; see
    :func:`training_texts`). Texts are laid end to end, but never across a block boundary: a question and
    its answer always share a block, so the model can learn to copy from the question (a text longer than
    a block is an error). Each text goes to the fullest of the last ``open_blocks`` blocks it fits in (best
    fit), which leaves little padding."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    filled: list[tuple[list[int], list[int]]] = []  # in the order the blocks were opened
    first_open = 0
    for text, start in texts:
        context = tokenizer(text[:start], add_special_tokens=False)["input_ids"] if start else []
        trained = tokenizer(text[start:], add_special_tokens=False)["input_ids"]
        text_ids, text_labels = context + trained, [-100] * len(context) + trained
        if len(text_ids) > block_size:
            raise ValueError(
                f"a training text has {len(text_ids)} tokens, more than --block_size {block_size}"
            )
        fits = [i for i in range(first_open, len(filled)) if len(filled[i][0]) + len(text_ids) <= block_size]
        if fits:
            ids, labels = filled[max(fits, key=lambda i: len(filled[i][0]))]
        else:
            ids, labels = [], []
            filled.append((ids, labels))
            first_open = max(first_open, len(filled) - open_blocks)
        ids += text_ids
        labels += text_labels
    blocks = [ids + [pad] * (block_size - len(ids)) for ids, _ in filled]
    block_labels = [labels + [-100] * (block_size - len(labels)) for _, labels in filled]
    return blocks, block_labels


def tokenizer_corpus_texts(spec: ModelSpec, seed: int) -> list[str]:
    """Texts the toy tokenizer is trained on besides the task words: every turn the toy model reads (system
    header, instructions, task inputs), so the chat template costs few tokens."""
    from infra.prompts import build_messages

    texts = [" ".join(WORDS)] * 20 + [r["document"] for r in task_records("toy_copy", 500, seed + 300)]
    for task in TOY_TASKS:
        for record in task_records(task, 20, seed + 400):
            texts += [str(m["content"]) for m in build_messages(spec, spec.prompt(task), {**record})] * 5
    # Llama-3's date header, which the toy template leaves out, stays: it shapes the merges the toy model's
    # mastery was measured with (other merges change when copying forms; see vocab_size).
    texts += [LLAMA_DATE_HEADER] * 100
    return texts


def build_toy_tokenizer(spec: ModelSpec, vocab_size: int = ToyModelArgs.vocab_size, seed: int = 0) -> Any:
    """The toy tokenizer: byte-level BPE trained on the toy words and turns, digits split, the toy chat
    template."""
    tokenizer = build_tokenizer(
        "llama",
        vocab_size=vocab_size,
        seed=seed,
        individual_digits=True,
        extra_corpus=tokenizer_corpus_texts(spec, seed),
    )
    tokenizer.chat_template = TOY_CHAT_TEMPLATE
    return tokenizer


SHIPPED_MODEL = Path(__file__).parent / "toy_llama"


def shipped_model(args: ToyModelArgs) -> Path | None:
    """The shipped model when it is the one ``args`` would train (same recipe, seed included), else None."""
    stamp = SHIPPED_MODEL / "toy.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("recipe") == recipe_key(args):
        return SHIPPED_MODEL
    return None


def build_toy_model(args: ToyModelArgs) -> Path:
    """The toy model (copied when shipped, trained unless an up-to-date one is there) and the toy data that
    goes with it."""
    output_dir = Path(args.output_dir or cache_dir() / "models" / "toy-llama")
    data_dir = Path(args.data_dir or cache_dir() / "toy" / "data")
    stamp = output_dir / "toy.json"
    shipped = None if args.force else shipped_model(args)
    if not args.force and stamp.is_file() and json.loads(stamp.read_text()).get("recipe") == recipe_key(args):
        print(f"[toy] {output_dir} is up to date")
    elif shipped is not None:
        with atomic_directory(output_dir, overwrite=True) as temporary:
            for file in sorted(shipped.iterdir()):
                if file.suffix in {".json", ".jinja", ".safetensors"}:
                    shutil.copy2(file, temporary / file.name)
        seconds = json.loads((shipped / "toy.json").read_text())["seconds"]
        print(
            f"[toy] {output_dir}: the shipped model of this recipe ({shipped.relative_to(REPO_ROOT)}, trained in "
            f"{seconds:.0f} s on 2 CPU cores); --force trains it here"
        )
    else:
        train_toy_model(args, output_dir)
    write_toy_data(data_dir, output_dir)
    return output_dir


def write_toy_data(
    data_dir: Path, model_dir: Path, model_config: str = TOY_MODEL_CONFIG, task_dir: Path | None = None
) -> None:
    """The toy tasks' items (into ``task_dir``, default ``data_dir``), and into ``data_dir`` the
    classification items rendered with the model's chat template and the instruction set in its prompts;
    they do not depend on the model's seed, so every toy model shares them."""
    import transformers

    from infra.model_spec import load_model_spec
    from infra.prompts import render_prompt

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    spec = load_model_spec(model_config)
    render = lambda item: render_prompt(tokenizer, spec, "toy_copy", item)  # noqa: E731
    if task_dir is None or Path(task_dir) == Path(data_dir):
        write_task_data(data_dir, render=render)
    else:
        write_task_data(task_dir)
        write_choice_task(Path(data_dir), render, count=200, seed=1)
    write_instructions(data_dir / "toy_instructions.jsonl", INSTRUCTIONS, seed=0, model_config=model_config)


def train_toy_model(args: ToyModelArgs, output_dir: Path) -> None:
    import torch
    import transformers

    from infra.model_spec import load_model_spec

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    spec = load_model_spec(TOY_MODEL_CONFIG)
    tokenizer = build_toy_tokenizer(spec, args.vocab_size, args.seed)
    model_spec = TinyModelSpec(
        arch="llama",
        num_layers=args.num_layers,
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_heads=args.num_heads,
        num_kv_heads=args.num_heads // 2,
        max_positions=1024,
        seed=args.seed,
    )
    config = build_config(model_spec, tokenizer)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    blocks, block_labels = pack(
        tokenizer,
        training_texts(tokenizer, spec, args.train_examples, args.seed, args.repeat_every),
        args.block_size,
    )
    data, data_labels = torch.tensor(blocks), torch.tensor(block_labels)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=args.learning_rate, betas=(0.9, 0.95), weight_decay=0.1
    )

    def rate(step: int) -> float:  # linear warm-up, cosine decay to 10%
        if step < args.warmup_steps:
            return (step + 1) / args.warmup_steps
        progress = (step - args.warmup_steps) / max(1, args.steps - args.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    started = time.perf_counter()
    bar = progress_bar(range(args.steps), desc="train toy model", unit="step")
    losses = []
    for step in bar:
        rows = torch.randint(len(data), (args.batch_size,), generator=generator)
        loss = model(input_ids=data[rows], labels=data_labels[rows]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
        if bar.disable and (step + 1) % 250 == 0:  # no bar in a log file: a line now and then
            print(f"[toy] step {step + 1}/{args.steps}, loss {sum(losses[-50:]) / 50:.3f}", flush=True)
    model.eval()
    final_loss = sum(losses[-50:]) / len(losses[-50:])  # the mean of the last 50 steps
    with atomic_directory(output_dir, overwrite=True) as temporary:
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        atomic_write_json(
            temporary / "toy.json",
            {
                "recipe": recipe_key(args),
                "blocks": len(blocks),
                "tokens_seen": args.steps * args.batch_size * args.block_size,
                "final_loss": final_loss,
                "seconds": round(time.perf_counter() - started, 1),
            },
        )
    print(f"[toy] trained {args.num_layers}-layer model, final loss {final_loss:.3f} -> {output_dir}")


def write_instructions(path: Path, count: int, seed: int, model_config: str = TOY_MODEL_CONFIG) -> Path:
    """Prompts for recovery fine-tuning in Alpaca schema, answered in a dataset style unlike the model's."""
    from infra.model_spec import load_model_spec
    from infra.prompts import fill

    spec = load_model_spec(model_config)
    rng = random.Random(seed + 7)
    per_task = {task: task_records(task, count, seed + 200) for task in TOY_TASKS}
    rows = []
    for index in range(count):
        task = TOY_TASKS[index % len(TOY_TASKS)]
        record = per_task[task][index]
        instruction = fill(spec.prompt(task).user, record)
        rows.append({"instruction": instruction, "input": "", "output": dataset_answer(task, record, rng)})
    return atomic_write_jsonl(path, rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(ToyModelArgs, argv, doc=__doc__)
    build_toy_model(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
