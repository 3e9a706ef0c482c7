"""train: recipes, label masks per chat template, QLoRA for real, metrics, resume, adapter merge."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from infra.config import ConfigError
from infra.files import load_jsonl
from infra.model_spec import load_model_spec
from infra.modeling import load_model, load_tokenizer
from infra.prompts import sft_messages, training_text
from infra.study_models.tiny_models import ARCHITECTURES
from tests.helpers.chat_templates import MODEL_OF_ARCH, real_chat_template
from train.data import TrainingRecords, load_training_records
from train.merge_adapter import MergeArgs, merge_adapter
from train.recipe import SFTRecipe, load_recipe
from train.sft import build_trainer, train
from train.sft import main as sft_main

EXAMPLES = [
    {"id": "a", "prompt": "What is 2 + 3?", "response": "The answer is 5.\n\nDone."},
    {"id": "b", "prompt": "Write code", "response": "def f(x):\n    return [x]"},
    {"id": "c", "prompt": "Count", "response": "42 and 7, then 9"},
    {"id": "d", "prompt": "Spaces", "response": "  indented\n  lines  "},
]


def test_qlora_recipe_is_the_papers_and_flags_override():
    recipe = load_recipe(["--model", "m", "--data", "d", "--output_dir", "o"])
    assert (recipe.method, recipe.load_in_4bit, recipe.bnb_4bit_quant_type) == ("qlora", True, "nf4")
    assert recipe.bnb_4bit_use_double_quant and recipe.bnb_4bit_compute_dtype == "bfloat16"
    assert (recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout) == (64, 16, 0.05)
    assert (recipe.learning_rate, recipe.lr_scheduler_type, recipe.warmup_steps) == (
        2e-4,
        "constant_with_warmup",
        50,
    )
    assert (recipe.adam_beta1, recipe.adam_beta2, recipe.weight_decay) == (0.9, 0.99, 1e-4)
    assert recipe.per_device_train_batch_size * recipe.gradient_accumulation_steps == 8
    assert recipe.max_length == 8192 and recipe.gradient_checkpointing and recipe.eval_fraction == 0.1
    lora = load_recipe(["--recipe", "lora", "--model", "m", "--data", "d", "--output_dir", "o", "--lora_r=8"])
    assert (lora.method, lora.load_in_4bit, lora.lora_r) == ("lora", False, 8)
    with pytest.raises(ConfigError, match="unknown key 'lora_rank'"):
        load_recipe(["--model", "m", "--data", "d", "--output_dir", "o", "--lora_rank", "8"])
    with pytest.raises(ConfigError, match="load_in_4bit"):
        load_recipe(
            ["--recipe", "full", "--model", "m", "--data", "d", "--output_dir", "o", "--load_in_4bit"]
        )
    with pytest.raises(ConfigError, match="no such training recipe"):
        load_recipe(["--recipe", "nope", "--model", "m", "--data", "d", "--output_dir", "o"])


def small_recipe(model, output_dir, **overrides) -> SFTRecipe:
    values = dict(
        model=str(model),
        data="unused",
        output_dir=str(output_dir),
        method="lora",
        load_in_4bit=False,
        bf16=False,
        dtype="float32",
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        warmup_steps=0,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        gradient_checkpointing=False,
        max_length=256,
        eval_strategy="steps",
        eval_at_start=True,
        eval_steps=2,
        save_steps=2,
        keep_checkpoints=True,
        seed=3,
    )
    values.update(overrides)
    return SFTRecipe(**values)


SYSTEM = "You are a helpful assistant."
LLAMA_HEAD = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
)


def original_training_text(arch: str, prompt: str, response: str) -> tuple[str, str, str]:
    """What each real template renders for a training conversation, written out by hand: the prompt part,
    the part the loss must cover (the answer and its end-of-turn token) and what follows it."""
    if arch == "llama":  # system block with the date header always; contents trimmed
        head = f"{LLAMA_HEAD}{SYSTEM}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{prompt.strip()}"
        return (
            f"{head}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            f"{response.strip()}<|eot_id|>",
            "",
        )
    if arch == "qwen2":  # ChatML; contents as they are
        head = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n"
        return f"{head}<|im_start|>assistant\n", f"{response}<|im_end|>", "\n"
    if arch == "mistral":  # the original's `<s>[INST] {question}[/INST] {response}</s>`: no system turn
        return f"<s>[INST] {prompt}[/INST] ", f"{response.strip()}</s>", ""
    head = f"<bos><start_of_turn>user\n{prompt.strip()}<end_of_turn>\n<start_of_turn>model\n"  # gemma2
    return head, f"{response.strip()}<end_of_turn>", "\n"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_label_mask_covers_exactly_the_response(arch, tiny_models, tmp_path):
    """Against the paper model's own template: the loss covers the answer and the end-of-turn token, nothing
    of the prompt, in the text the original trained on."""
    spec = load_model_spec(MODEL_OF_ARCH[arch])
    tokenizer = load_tokenizer(str(tiny_models[arch]), padding_side="right")
    assert tokenizer.chat_template == real_chat_template(arch)
    trainer = build_trainer(
        small_recipe(tiny_models[arch], tmp_path), spec, tokenizer, TrainingRecords(EXAMPLES, [], {})
    )
    for example, row in zip(EXAMPLES, trainer.train_dataset):
        prompt, completion, tail = original_training_text(arch, example["prompt"], example["response"])
        labels, input_ids = row["labels"], row["input_ids"]
        assert input_ids == tokenizer(prompt + completion + tail, add_special_tokens=False)["input_ids"]
        inside = [i for i, label in enumerate(labels) if label != -100]
        assert inside == list(range(inside[0], inside[-1] + 1)), f"{arch}: the loss has a gap"
        assert [labels[i] for i in inside] == [input_ids[i] for i in inside]
        covered = tokenizer.decode([input_ids[i] for i in inside])
        # A token may carry the space before the first word (Mistral's "[/INST] " + answer): the original's
        # loss, too, started right after [/INST].
        assert covered == completion or (covered == " " + completion and prompt.endswith(" ")), (
            arch,
            covered,
        )
        assert tokenizer.decode(input_ids[: inside[0]]) + covered == prompt + completion
        assert tokenizer.decode(input_ids[inside[-1] + 1 :]) == tail
        assert input_ids.count(tokenizer.bos_token_id) == (0 if arch == "qwen2" else 1)


def test_mistral_training_text_drops_the_system_turn_the_prompt_had(tiny_models):
    """Mistral v0.3 folds the system message into the last user turn: self-generation saw it, the training
    text (like the original's) does not, and no part of the prompt may enter the loss because of it."""
    spec = load_model_spec(MODEL_OF_ARCH["mistral"])
    tokenizer = load_tokenizer(str(tiny_models["mistral"]))
    generation_prompt = tokenizer.apply_chat_template(
        sft_messages(spec, "Count"), tokenize=False, add_generation_prompt=True
    )
    assert generation_prompt == f"<s>[INST] {SYSTEM}\n\nCount[/INST]"
    example = training_text(tokenizer, spec, {"id": "c", "prompt": "Count", "response": "42"})
    assert example.text == "<s>[INST] Count[/INST] 42</s>"
    assert example.text[example.start : example.end] == "42</s>"


def repeated_records(n=24):
    pairs = [("Say A", "alpha alpha alpha"), ("Say B", "beta beta beta"), ("Say C", "gamma gamma")]
    return [{"id": f"r{i}", "prompt": pairs[i % 3][0], "response": pairs[i % 3][1]} for i in range(n)]


def write_records(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_qlora_quantizes_for_real_and_held_out_loss_falls(tiny_models, model_config_file, tmp_path):
    import bitsandbytes as bnb

    data = write_records(tmp_path / "data.jsonl", repeated_records())
    recipe = small_recipe(
        tiny_models["llama"],
        tmp_path / "qlora",
        data=str(data),
        model_config=str(model_config_file("llama", tiny_models["llama"])),
        method="qlora",
        load_in_4bit=True,
        bnb_4bit_compute_dtype="float32",
        learning_rate=2e-3,
        max_steps=12,
        eval_steps=6,
        save_steps=100,
        eval_fraction=0.25,
    )
    spec_records = load_training_records(str(data), None, 0.25, recipe.seed)
    from infra.model_spec import resolve_model_spec

    trainer = build_trainer(
        recipe,
        resolve_model_spec(recipe.model_config, recipe.model),
        load_tokenizer(recipe.model),
        spec_records,
    )
    base = trainer.model.get_base_model()
    linear4 = [m for m in base.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(linear4) == 8 * 7  # q, k, v, o, gate, up, down in each of the 8 layers
    assert all(m.weight.quant_state.quant_type == "nf4" for m in linear4)
    assert all(m.weight.dtype == torch.uint8 for m in linear4)
    del trainer

    train(recipe)
    metrics = load_jsonl(tmp_path / "qlora" / "metrics.jsonl")
    evals = [m for m in metrics if "eval_loss" in m]
    assert [m["step"] for m in evals] == [0, 6, 12]
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] - 0.5, evals
    assert evals[-1]["eval_perplexity"] == pytest.approx(torch.tensor(evals[-1]["eval_loss"]).exp().item())
    assert [m["step"] for m in metrics if "train_loss" in m] == list(range(1, 13))
    assert (tmp_path / "qlora" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "qlora" / "manifest.json").is_file()


def test_training_resumes_from_the_last_checkpoint(tiny_models, model_config_file, tmp_path):
    data = write_records(tmp_path / "data.jsonl", repeated_records(16))
    config = str(model_config_file("llama", tiny_models["llama"]))

    def run(output):
        train(small_recipe(tiny_models["llama"], output, data=str(data), model_config=config, max_steps=4))
        return load_jsonl(output / "metrics.jsonl")

    whole = run(tmp_path / "whole")
    # The same run, killed after the step-2 checkpoint was written (step 4 lost).
    interrupted = tmp_path / "interrupted"
    shutil.copytree(tmp_path / "whole", interrupted)
    for name in ("checkpoint-4", "adapter", "manifest.json"):
        path = interrupted / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    resumed = run(interrupted)
    steps = [(m["step"], "eval_loss" in m, m.get("summary", False)) for m in resumed]
    assert len(steps) == len(set(steps))  # no step logged twice
    train_loss = lambda ms: {m["step"]: m["train_loss"] for m in ms if "train_loss" in m}  # noqa: E731
    assert train_loss(resumed).keys() == {1, 2, 3, 4}
    for step in (3, 4):
        assert train_loss(resumed)[step] == pytest.approx(train_loss(whole)[step], abs=1e-5)


def test_merged_checkpoint_equals_base_plus_adapter(tiny_models, model_config_file, tmp_path):
    data = write_records(tmp_path / "data.jsonl", repeated_records(8))
    recipe = small_recipe(
        tiny_models["qwen2"],
        tmp_path / "run",
        data=str(data),
        model_config=str(model_config_file("qwen2", tiny_models["qwen2"])),
        learning_rate=5e-3,
        max_steps=3,
    )
    adapter = train(recipe)
    merge_adapter(MergeArgs(adapter=str(adapter), output_dir=str(tmp_path / "merged"), dtype="float32"))
    ids = torch.randint(5, 400, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = load_model(str(tiny_models["qwen2"]), dtype="float32", device="cpu")(ids).logits
        with_adapter = load_model(
            str(tiny_models["qwen2"]), adapter=str(adapter), dtype="float32", device="cpu"
        )(ids).logits
        merged = load_model(str(tmp_path / "merged"), dtype="float32", device="cpu")(ids).logits
    assert (with_adapter - base).abs().max() > 1e-3  # the adapter does change the model
    # Tolerance: float32 re-association of W x + B A x versus (W + B A) x.
    assert (merged - with_adapter).abs().max() < 1e-4
    lineage = json.loads((tmp_path / "merged" / "lineage.json").read_text())
    assert lineage["adapter"] == str(adapter)


def test_bad_training_data_is_named(tiny_models, tmp_path, capsys):
    cases = {
        "empty.jsonl": ("", "empty file"),
        "noresponse.jsonl": ('{"prompt": "a", "response": "b"}\n{"prompt": "c"}\n', "noresponse.jsonl:2"),
        "broken.jsonl": (
            '{"prompt": "a", "response": "b"}\n{"prompt": \n{"prompt": "a"}\n',
            "broken.jsonl:2",
        ),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        code = sft_main(
            [
                "--model",
                str(tiny_models["llama"]),
                "--data",
                str(tmp_path / name),
                "--output_dir",
                str(tmp_path / "o"),
                "--bnb_4bit_compute_dtype",
                "float32",
                "--bf16",
                "false",
            ]
        )
        assert code == 2 and expected in capsys.readouterr().err
    assert not (tmp_path / "o" / "adapter").exists()


def test_every_recipe_and_accelerate_config_loads():
    from accelerate.commands.config.config_args import ClusterConfig

    from infra.paths import REPO_ROOT

    recipes = sorted(p.stem for p in (REPO_ROOT / "configs" / "train").glob("*.yaml"))
    assert recipes == ["full", "lora", "qlora"]
    for name in recipes:
        recipe = load_recipe(["--recipe", name, "--model", "m", "--data", "d", "--output_dir", "o"])
        assert recipe.method == name and recipe.uses_adapter == (name != "full")
    kinds = {
        p.stem: ClusterConfig.from_yaml_file(str(p)).distributed_type.value
        for p in (REPO_ROOT / "configs" / "accelerate").glob("*.yaml")
    }
    assert kinds == {"deepspeed_zero3": "DEEPSPEED", "fsdp": "FSDP", "multi_gpu": "MULTI_GPU"}
