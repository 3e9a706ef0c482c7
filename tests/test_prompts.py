from __future__ import annotations

import pytest

from infra.config import ConfigError
from infra.modeling import load_tokenizer
from infra.prompts import render_prompt
from infra.tiny_models import ARCHITECTURES

ITEMS = {
    "gsm8k": {"question": "Tom has 3 apples and buys 4 more. How many?"},
    "humaneval": {"prompt": 'def add(a, b):\n    """Add {a} and b."""\n'},
    "mbpp": {"prompt": '"""\nWrite a function to add two numbers.\nassert add(1, 2) == 3\n"""\n'},
    "xsum": {"document": "The council met on Monday. It approved the new bridge."},
    "arithmetic": {"question": "What is (1 + 2) * 3?"},
    "sft": {"prompt": "Name a colour."},
}
TURN_MARKERS = {
    "llama": (
        "<|start_header_id|>user<|end_header_id|>\n\n",
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    "qwen2": ("<|im_start|>user\n", "<|im_start|>assistant\n"),
    "mistral": ("[INST] ", "[/INST]"),
    "gemma2": ("<start_of_turn>user\n", "<start_of_turn>model\n"),
}


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("task", sorted(ITEMS))
def test_render_each_task_for_each_model(tiny_models, tiny_specs, arch, task):
    tokenizer = load_tokenizer(str(tiny_models[arch]))
    spec = tiny_specs[arch]
    text = render_prompt(tokenizer, spec, task, ITEMS[task])
    user_marker, assistant_marker = TURN_MARKERS[arch]
    prompt_spec = spec.prompt(task)
    expected_user = prompt_spec.user.format_map(ITEMS[task])
    expected_prefix = prompt_spec.assistant_prefix.format_map(ITEMS[task])
    # The item text arrives verbatim (braces in code are not re-formatted) and the answer prefix ends it.
    assert expected_user.strip() in text
    assert text.endswith(assistant_marker + expected_prefix)
    assert text.index(user_marker) < text.index(expected_user.strip()[:20])
    has_system = prompt_spec.system is not None and prompt_spec.system in text
    assert has_system == (arch != "gemma2")  # Gemma's template has no system turn


def test_humaneval_prefix_restates_signature(tiny_models, tiny_specs):
    tokenizer = load_tokenizer(str(tiny_models["llama"]))
    text = render_prompt(tokenizer, tiny_specs["llama"], "humaneval", ITEMS["humaneval"])
    assert text.endswith("Here is the final answer:\n\n```python\n" + ITEMS["humaneval"]["prompt"])


def test_missing_item_field_is_named(tiny_models, tiny_specs):
    tokenizer = load_tokenizer(str(tiny_models["qwen2"]))
    with pytest.raises(ConfigError, match="no field 'question'"):
        render_prompt(tokenizer, tiny_specs["qwen2"], "gsm8k", {"problem": "x"})
