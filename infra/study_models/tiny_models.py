"""Tiny random models of each supported architecture, with a tokenizer trained on the spot.

Used by the tests, the benchmarks and the CPU toy study. Each model gets a chat template written in the
style of its family (Llama-3 headers, ChatML, Mistral [INST], Gemma turns without a system role), so the
prompt rendering and the loss masks are exercised on the same shapes as the real models.

    python -m infra.study_models.tiny_models --arch llama --output_dir .cache/models/tiny-llama
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCHITECTURES = ("llama", "qwen2", "mistral", "gemma2")

LLAMA_DATE_HEADER = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
CHAT_TEMPLATES = {
    # As Llama-3.1's own template renders text conversations: a system block with its date header always,
    # turn contents trimmed.
    "llama": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
        "{% set system_message = messages[0]['content'] | trim %}{% set loop_messages = messages[1:] %}"
        "{% else %}{% set system_message = '' %}{% set loop_messages = messages %}{% endif %}"
        "<|start_header_id|>system<|end_header_id|>\n\n"
        + LLAMA_DATE_HEADER
        + "{{ system_message }}<|eot_id|>"
        "{% for m in loop_messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
        "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
    "qwen2": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "mistral": (
        "{{ bos_token }}{% set ns = namespace(system='') %}"
        "{% for m in messages %}{% if m['role'] == 'system' %}{% set ns.system = m['content'] + '\n\n' %}"
        "{% elif m['role'] == 'user' %}[INST] {{ ns.system }}{{ m['content'] }}[/INST]{% set ns.system = '' %}"
        "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    ),
    "gemma2": (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
        "{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
}

SPECIAL_TOKENS = {
    "llama": {
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
        "pad": "<|finetune_right_pad_id|>",
        "extra": ["<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"],
    },
    "qwen2": {"bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>", "extra": ["<|im_start|>"]},
    "mistral": {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "extra": ["[INST]", "[/INST]"]},
    "gemma2": {"bos": "<bos>", "eos": "<end_of_turn>", "pad": "<pad>", "extra": ["<start_of_turn>", "<eos>"]},
}

# Where each family's model config puts a task's instruction (configs/models/*.yaml).
INSTRUCTION_PLACEMENT = {"llama": "system", "qwen2": "system", "mistral": "user", "gemma2": "user"}

# The marker after which a training example's loss starts (what configs/models/*.yaml call response_template).
RESPONSE_TEMPLATES = {
    "llama": "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "qwen2": "<|im_start|>assistant\n",
    "mistral": "[/INST]",
    "gemma2": "<start_of_turn>model\n",
}


def tokenizer_corpus(seed: int = 0, size: int = 3000) -> list[str]:
    """Text with digits, arithmetic, English and Python, so the BPE vocabulary covers the tasks."""
    rng = random.Random(seed)
    words = (
        "the a of to and is in that it for on was with as he she they you we at by this from or have not "
        "question answer what how many much total each more less than times plus minus add subtract "
        "return def if else for while in range len print list dict int str true false none import "
        "summary article sentence step reason final result number value sum product brackets code"
    ).split()
    lines = []
    for _ in range(size):
        kind = rng.randrange(4)
        if kind == 0:
            a, b, c = (rng.randrange(10) for _ in range(3))
            lines.append(f"Question: What is ({a} + {b}) * {c}?\nAnswer: {(a + b) * c}")
        elif kind == 1:
            lines.append(" ".join(rng.choice(words) for _ in range(rng.randrange(5, 15))).capitalize() + ".")
        elif kind == 2:
            name = rng.choice(words)
            lines.append(f"def {name}(x, y):\n    return [x + y, (x * y) - {rng.randrange(100)}]\n")
        else:
            lines.append(
                f"{rng.randrange(10000)} {rng.random():.3f} #### {rng.randrange(-50, 500)} {{}}()[]<>=!\"'"
            )
    return lines


def build_tokenizer(
    arch: str,
    vocab_size: int = 512,
    seed: int = 0,
    *,
    individual_digits: bool = False,
    extra_corpus: list[str] | None = None,
) -> Any:
    """A byte-level BPE tokenizer trained here, with the family's special tokens and chat template.

    ``individual_digits`` splits numbers into digits first (as Llama-3 and Qwen do for arithmetic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = SPECIAL_TOKENS[arch]
    specials = [t for t in (special["bos"], special["eos"], special["pad"]) if t] + special["extra"]
    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if individual_digits
        else byte_level
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tokenizer_corpus(seed) + list(extra_corpus or []), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=special["bos"],
        eos_token=special["eos"],
        pad_token=special["pad"],
        additional_special_tokens=special["extra"],
        model_max_length=2048,
    )
    wrapped.chat_template = CHAT_TEMPLATES[arch]
    return wrapped


@dataclass
class TinyModelSpec:
    arch: str = "llama"
    num_layers: int = 8
    hidden_size: int = 64
    intermediate_size: int = 128
    num_heads: int = 4
    num_kv_heads: int = 2
    vocab_size: int = 512
    max_positions: int = 1024
    seed: int = 0
    extra: dict = field(default_factory=dict)
    # The tokenizer's chat template; None: the family-style one of CHAT_TEMPLATES. The tests give the paper
    # models' own templates (tests/data/chat_templates).
    chat_template: str | None = None
    # Special tokens added after training (new ids at the end), e.g. a real model's other stop tokens.
    added_tokens: tuple[str, ...] = ()


def build_config(spec: TinyModelSpec, tokenizer: Any) -> Any:
    import transformers

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    if spec.arch == "llama":
        config = transformers.LlamaConfig(**common)
    elif spec.arch == "qwen2":
        # A sliding window on the upper half gives a non-uniform layer_types list to prune correctly.
        config = transformers.Qwen2Config(
            **common, use_sliding_window=True, sliding_window=32, max_window_layers=spec.num_layers // 2
        )
    elif spec.arch == "mistral":
        config = transformers.MistralConfig(**common, sliding_window=64)
    elif spec.arch == "gemma2":
        config = transformers.Gemma2Config(
            **{**common, "tie_word_embeddings": True},
            head_dim=spec.hidden_size // spec.num_heads,
            query_pre_attn_scalar=spec.hidden_size // spec.num_heads,
            sliding_window=32,
        )
    else:
        raise ValueError(f"unknown architecture {spec.arch!r} (known: {', '.join(ARCHITECTURES)})")
    for key, value in spec.extra.items():
        setattr(config, key, value)
    return config


def build_tiny_model(spec: TinyModelSpec, output_dir: str | Path | None = None) -> tuple[Any, Any]:
    """Build (and, given ``output_dir``, save) a randomly initialised model and its tokenizer."""
    import torch
    import transformers

    tokenizer = build_tokenizer(spec.arch, spec.vocab_size, spec.seed)
    if spec.chat_template is not None:
        tokenizer.chat_template = spec.chat_template
    if spec.added_tokens:
        tokenizer.add_tokens(list(spec.added_tokens), special_tokens=True)
    config = build_config(spec, tokenizer)
    torch.manual_seed(spec.seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Random init at std 0.02 gives near-uniform outputs; larger weights make layers matter more.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2 and "embed" not in name:
                param.normal_(0.0, 0.08)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    if output_dir is not None:
        output_dir = Path(output_dir)
        model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
    return model, tokenizer


def tiny_model_spec(arch: str, path: str | Path, num_layers: int = 8) -> Any:
    """A :class:`~infra.model_spec.ModelSpec` for a tiny model built by :func:`build_tiny_model`."""
    from infra.model_spec import ModelSpec, load_prompt_set

    return ModelSpec(
        name=f"tiny-{arch}",
        hub_id=str(path),
        num_layers=num_layers,
        supports_system_turn=arch != "gemma2",
        instruction_placement=INSTRUCTION_PLACEMENT[arch],
        response_template=RESPONSE_TEMPLATES[arch],
        tasks=load_prompt_set("default"),
        stop_tokens=[SPECIAL_TOKENS[arch]["eos"]],
        max_context=1024,
        dtype="float32",
    )


def main(argv: list[str] | None = None) -> None:
    from infra.config import parse_cli

    @dataclass
    class Args:
        output_dir: str
        arch: str = "llama"
        num_layers: int = 8
        hidden_size: int = 64
        seed: int = 0

    args = parse_cli(Args, argv, doc=__doc__)
    build_tiny_model(
        TinyModelSpec(
            arch=args.arch,
            num_layers=args.num_layers,
            hidden_size=args.hidden_size,
            intermediate_size=2 * args.hidden_size,
            seed=args.seed,
        ),
        args.output_dir,
    )
    print(f"wrote {args.arch} tiny model with {args.num_layers} layers to {args.output_dir}")


if __name__ == "__main__":
    main()
