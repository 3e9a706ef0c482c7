"""Check a model config against the model's own tokenizer and chat template, before spending GPU hours.

    python -m infra.check_model --model_config smollm2-135m-instruct
    python -m infra.check_model --model_config my-model --model /path/to/checkpoint

Prints, for a sample item of every evaluation task, the prompt exactly as the model will see it, and for a
sample fine-tuning record the training text with the part the loss covers marked ``⟦ ⟧``. Then checks what
breaks a run silently: every stop token is one token of the vocabulary; no prompt starts with two BOS; the
template closes the assistant's turn with one of the stop tokens; the loss covers the answer and that token and
nothing of the prompt. Exit status 0 when every check passes, 2 otherwise (each failure is named).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from infra.config import ConfigError, parse_cli, report_error
from infra.generation import stop_token_ids
from infra.model_spec import ModelSpec, load_model_spec
from infra.prompts import render_prompt, training_text
from infra.task_registry import registry

SAMPLE_ITEMS = {
    "gsm8k": {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?"},
    "humaneval": {"prompt": 'def add(a, b):\n    """Return a + b."""\n'},
    "mbpp": {"prompt": "Write a function to add two numbers.", "test_assertion": "assert add(1, 2) == 3"},
    "xsum": {"document": "The council met on Monday. It approved the new bridge over the river."},
}
SAMPLE_RECORD = {"id": "sample", "prompt": "Name a primary colour.", "response": "Red is a primary colour."}


@dataclass
class CheckArgs:
    model_config: str = field(metadata={"help": "configs/models name or YAML path"})
    model: str | None = field(default=None, metadata={"help": "checkpoint or hub id (default: the config's)"})
    tasks: list[str] = field(default_factory=lambda: list(SAMPLE_ITEMS))


def check(spec: ModelSpec, tokenizer, tasks: list[str]) -> list[str]:
    """Print the rendered texts; return the failed checks (empty when all pass)."""
    failures = []
    try:
        stop_token_ids(tokenizer, spec.stop_tokens)
    except ValueError as error:
        failures.append(f"stop_tokens: {error}")
    bos = tokenizer.bos_token_id
    for task in tasks:
        if task not in SAMPLE_ITEMS:
            raise ConfigError(f"tasks: no sample item for {task!r} (known: {', '.join(SAMPLE_ITEMS)})")
        registry().spec(task)
        prompt = render_prompt(tokenizer, spec, task, SAMPLE_ITEMS[task])
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        print(f"--- {task} prompt ({len(ids)} tokens) ---\n{prompt}")
        if bos is not None and ids[:2] == [bos, bos]:  # the template's BOS and another one added to it
            failures.append(f"{task}: the prompt starts with two BOS tokens")
    try:
        example = training_text(tokenizer, spec, SAMPLE_RECORD)
    except ConfigError as error:
        failures.append(f"training text: {error}")
    else:
        marked = f"{example.text[: example.start]}⟦{example.text[example.start : example.end]}⟧"
        print(f"--- training text (loss inside ⟦ ⟧) ---\n{marked}{example.text[example.end :]}")
        covered = example.text[example.start : example.end]
        if SAMPLE_RECORD["prompt"] in covered or not covered.startswith(SAMPLE_RECORD["response"].strip()):
            failures.append(f"training text: the loss covers {covered!r}, not the answer alone")
    return failures


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(CheckArgs, argv, doc=__doc__)
    from infra.modeling import load_tokenizer

    try:
        spec = load_model_spec(args.model_config)
        tokenizer = load_tokenizer(args.model or spec.hub_id)
        failures = check(spec, tokenizer, args.tasks)
    except (ConfigError, OSError, ValueError) as error:
        return report_error(error)
    for failure in failures:
        print(f"[check] FAILED {failure}", file=sys.stderr)
    print(f"[check] {spec.name}: {'all checks passed' if not failures else f'{len(failures)} failed'}")
    return 0 if not failures else 2


if __name__ == "__main__":
    sys.exit(main())
