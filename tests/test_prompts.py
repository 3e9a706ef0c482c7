"""Every model x task prompt, rendered through the paper model's own chat template, equals the string the
original code sent, up to the fixes docs/fidelity.md lists."""

from __future__ import annotations

import pytest

from infra.config import ConfigError
from infra.model_spec import load_model_spec
from infra.modeling import load_tokenizer
from infra.paths import REPO_ROOT
from infra.prompts import render_prompt
from tests.helpers.chat_templates import real_chat_template

MODEL_CONFIGS = {
    "llama": "llama-3.1-8b-instruct",
    "qwen2": "qwen2.5-7b-instruct",
    "mistral": "mistral-7b-instruct-v0.3",
    "gemma2": "gemma-2-2b-it",
}
Q = "Tom has 3 apples and buys 4 more. How many?"
HE = 'def add(a, b):\n    """Add {a} and b."""\n'  # braces in code stay as they are
MB = "Write a function to add two numbers."
TA = "assert add(1, 2) == 3"
DOC = "The council met on Monday. It approved the new bridge."
ITEMS = {
    "gsm8k": {"question": Q},
    "humaneval": {"prompt": HE},
    "mbpp": {"prompt": MB, "test_assertion": TA},
    "xsum": {"document": DOC},
}
MATH = "Please reason step by step, and put your final answer within \\boxed{}."
CODE = (
    "Please solve the following problem with python code. Keep it concise. Follow the prefix I provide and "
    "just finish the function inside ```python (code)```."
)
CODE_MISTRAL = (
    "Please solve the following problem with python code. Put the code inside a function named solution. "
    "ONLY give me the function as the output, don't attempt to solve the problem yourself."
)
MBPP = (
    "Please solve the following programming problem with python code. Write a complete function that "
    "satisfies the requirements."
)
XSUM = "Please provide a concise one-sentence summary of the following article."
ASSERTION = f"\nYour code should satisfy the following assertion:\n{TA}"
HE_PREFIX = f"Here is the final answer:\n\n```python\n{HE}"
MB_PREFIX = "Here is a solution to this programming problem:\n```python"

LLAMA_SYSTEM = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
)
LLAMA_USER = "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
LLAMA_ASSISTANT = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"

# The original strings with the documented fixes applied (docs/fidelity.md, "Prompts"):
# (a) Llama GSM8K: no stray quotes around the string; (b) Llama MBPP+: the blank lines after the header
# tokens and after the date header; (c) Gemma MBPP+: Gemma's turn format instead of ChatML; (d) one BOS (the
# template's; backends add none); (e) templates that trim turn contents (Llama, Gemma) drop the newline that
# ends a HumanEval+ prompt or the MBPP+ user text before the end-of-turn token; (f) Gemma's generation prompt
# ends with the newline its template puts after "model" (the GSM8K and XSUM strings stopped at "model").
EXPECTED = {
    ("llama", "gsm8k"): f"{LLAMA_SYSTEM}{MATH}{LLAMA_USER}{Q}{LLAMA_ASSISTANT}",
    ("llama", "humaneval"): f"{LLAMA_SYSTEM}{CODE}{LLAMA_USER}{HE.rstrip()}{LLAMA_ASSISTANT}\n\n{HE_PREFIX}",
    ("llama", "mbpp"): f"{LLAMA_SYSTEM}{MBPP}{LLAMA_USER}{MB}{ASSERTION}{LLAMA_ASSISTANT}{MB_PREFIX}\n",
    ("llama", "xsum"): f"{LLAMA_SYSTEM}{XSUM}{LLAMA_USER}{DOC}{LLAMA_ASSISTANT}",
    ("qwen2", "gsm8k"): (
        f"<|im_start|>system\n{MATH}<|im_end|>\n<|im_start|>user\n{Q}\n<|im_end|>\n<|im_start|>assistant\n"
    ),
    ("qwen2", "humaneval"): (
        f"<|im_start|>system\n{CODE}\n<|im_end|>\n<|im_start|>user\n{HE}\n<|im_end|>\n"
        f"<|im_start|>assistant\n\n{HE_PREFIX}"
    ),
    ("qwen2", "mbpp"): (
        f"<|im_start|>system\n{MBPP}<|im_end|>\n<|im_start|>user\n{MB}{ASSERTION}\n<|im_end|>\n"
        f"<|im_start|>assistant\n{MB_PREFIX}\n"
    ),
    ("qwen2", "xsum"): (
        f"<|im_start|>system\n{XSUM}<|im_end|>\n<|im_start|>user\n{DOC}\n<|im_end|>\n<|im_start|>assistant\n"
    ),
    ("mistral", "gsm8k"): f"<s>[INST] {MATH}\n\n{Q}[/INST]",
    ("mistral", "humaneval"): f"<s>[INST] {CODE_MISTRAL}\n\n{HE}[/INST] \n{HE_PREFIX}",
    ("mistral", "mbpp"): f"<s>[INST] {MBPP}\n\n{MB}{ASSERTION}[/INST] \n{MB_PREFIX}",
    ("mistral", "xsum"): f"<s>[INST] {XSUM}\n\n{DOC}[/INST]",
    ("gemma2", "gsm8k"): f"<bos><start_of_turn>user\n{MATH}\n\n{Q}<end_of_turn>\n<start_of_turn>model\n",
    ("gemma2", "humaneval"): (
        f"<bos><start_of_turn>user\n{CODE}\n\n{HE.rstrip()}<end_of_turn>\n<start_of_turn>model\n\n{HE_PREFIX}"
    ),
    ("gemma2", "mbpp"): (
        f"<bos><start_of_turn>user\n{MBPP}\n\n{MB}{ASSERTION}<end_of_turn>\n<start_of_turn>model\n{MB_PREFIX}"
    ),
    ("gemma2", "xsum"): f"<bos><start_of_turn>user\n{XSUM}\n\n{DOC}<end_of_turn>\n<start_of_turn>model\n",
}


@pytest.mark.parametrize(("arch", "task"), sorted(EXPECTED))
def test_prompt_equals_the_original_string(tiny_models, arch, task):
    tokenizer = load_tokenizer(str(tiny_models[arch]))
    spec = load_model_spec(MODEL_CONFIGS[arch])
    assert render_prompt(tokenizer, spec, task, ITEMS[task]) == EXPECTED[(arch, task)]


@pytest.mark.parametrize("arch", sorted(MODEL_CONFIGS))
def test_one_bos_in_the_tokens(tiny_models, arch):
    """The rendered text carries the template's BOS; tokenized as the backends do, it has exactly one."""
    tokenizer = load_tokenizer(str(tiny_models[arch]))
    text = render_prompt(tokenizer, load_model_spec(MODEL_CONFIGS[arch]), "gsm8k", ITEMS["gsm8k"])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    assert ids.count(bos) == (0 if bos is None or arch == "qwen2" else 1)


def test_mistral_uniform_variant_uses_the_shared_instruction(tiny_models):
    tokenizer = load_tokenizer(str(tiny_models["mistral"]))
    spec = load_model_spec(MODEL_CONFIGS["mistral"], prompt_variant="uniform")
    text = render_prompt(tokenizer, spec, "humaneval", ITEMS["humaneval"])
    assert text == f"<s>[INST] {CODE}\n\n{HE}[/INST] \n{HE_PREFIX}"


def test_missing_item_field_is_named(tiny_models, tiny_specs):
    tokenizer = load_tokenizer(str(tiny_models["qwen2"]))
    with pytest.raises(ConfigError, match="no field 'question'"):
        render_prompt(tokenizer, tiny_specs["qwen2"], "gsm8k", {"problem": "x"})


def test_sft_conversation_has_the_system_turn_where_the_template_has_one(tiny_models, tiny_specs):
    from infra.prompts import sft_messages

    for arch in MODEL_CONFIGS:
        messages = sft_messages(tiny_specs[arch], "Name a colour.")
        roles = [m["role"] for m in messages]
        assert roles == (["user"] if arch == "gemma2" else ["system", "user"])


@pytest.mark.parametrize("arch", sorted(MODEL_CONFIGS))
def test_the_tokenizers_carry_the_real_templates_and_close_a_turn_with_a_stop_token(tiny_models, arch):
    tokenizer = load_tokenizer(str(tiny_models[arch]))
    assert tokenizer.chat_template == real_chat_template(arch)
    spec = load_model_spec(MODEL_CONFIGS[arch])
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}], tokenize=False
    )
    closing = text.split("Hello there", 1)[1]
    assert any(closing.startswith(token) for token in spec.stop_tokens), closing
    eot = next(token for token in spec.stop_tokens if closing.startswith(token))
    assert len(tokenizer(eot, add_special_tokens=False)["input_ids"]) == 1


def test_mistral_template_renders_llama_cpp_expected_output():
    """The fixture is the template llama.cpp tests as mistralai's 'v3' (Mistral-7B-Instruct-v0.3): it renders
    that test's conversation to the output llama.cpp expects (system folded into the last user turn)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(
        real_chat_template("mistral")
    )
    conversation = [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "Who are you"},
        {"role": "assistant", "content": "   I am an assistant   "},
        {"role": "user", "content": "Another question"},
    ]
    rendered = template.render(
        messages=conversation, bos_token="", eos_token="</s>", add_generation_prompt=True
    )
    assert rendered == (
        "[INST] Hello[/INST] Hi there</s>[INST] Who are you[/INST] I am an assistant</s>"
        "[INST] You are a helpful assistant\n\nAnother question[/INST]"
    )


@pytest.mark.parametrize("arch", sorted(MODEL_CONFIGS))
def test_check_model_passes_each_paper_config_against_its_template(tiny_models, arch, capsys):
    from infra.check_model import main as check_main

    assert check_main(["--model_config", MODEL_CONFIGS[arch], "--model", str(tiny_models[arch])]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out and "⟦" in out


def test_check_model_names_a_wrong_stop_token(tiny_models, model_config_file, capsys):
    from infra.check_model import main as check_main

    config = model_config_file("qwen2", tiny_models["qwen2"], stop_tokens=["<|eot_id|>"])
    assert check_main(["--model_config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "stop_tokens: stop token '<|eot_id|>' is not in the tokenizer's vocabulary" in err
    assert "training text:" in err  # the template closes the turn with <|im_end|>, not a configured stop


def test_check_model_names_a_prompt_with_two_bos(tiny_models, tmp_path, capsys):
    """A template that writes BOS and a tokenizer that adds another: the prompt starts with two, and the check
    says which task."""
    import shutil

    from infra.check_model import main as check_main

    model = tmp_path / "two-bos"
    shutil.copytree(tiny_models["llama"], model)
    template = model / "chat_template.jinja"
    template.write_text("{{ bos_token }}" + template.read_text())
    assert check_main(["--model_config", MODEL_CONFIGS["llama"], "--model", str(model)]) == 2
    assert "the prompt starts with two BOS tokens" in capsys.readouterr().err


def test_the_readmes_check_model_command_passes_on_smollm2():
    """README, "Adding a model": python -m infra.check_model --model_config smollm2-135m-instruct."""
    import subprocess
    import sys

    from infra.study_models.real_model import ensure_real_model

    ensure_real_model()
    result = subprocess.run(
        [sys.executable, "-m", "infra.check_model", "--model_config", "smollm2-135m-instruct"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "all checks passed" in result.stdout and "<|im_start|>assistant" in result.stdout
