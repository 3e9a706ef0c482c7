"""The toy study's data: tasks are pure functions of a seed, training blocks never split an example, and the
toy classification and probe files are in the formats lm-eval and the probe read."""

from __future__ import annotations

import hashlib
import json

import pytest

from infra.model_spec import load_model_spec
from infra.study_models.tiny_models import LLAMA_DATE_HEADER
from infra.study_models.toy_model import build_toy_tokenizer, pack, training_texts
from infra.study_models.toy_tasks import choice_records, task_records, write_task_data


@pytest.fixture(scope="module")
def toy_tokenizer():
    spec = load_model_spec("toy-llama")
    return spec, build_toy_tokenizer(spec, seed=0)


def test_training_blocks_never_split_an_example(toy_tokenizer):
    spec, tokenizer = toy_tokenizer
    texts = training_texts(tokenizer, spec, 60, seed=0)
    blocks, labels = pack(tokenizer, texts, 256)
    assert all(len(block) == 256 for block in blocks) and len(blocks) == len(labels)
    # Every trained answer starts right after the response template of its own question, in the same block.
    template = tokenizer(spec.response_template, add_special_tokens=False)["input_ids"]
    answers = 0
    for block, block_labels in zip(blocks, labels):
        for position in range(1, len(block)):
            if block_labels[position] != -100 and block_labels[position - 1] == -100:
                before = block[max(0, position - len(template)) : position]
                if before == template:
                    answers += 1
    chat = sum(1 for text, _ in texts if spec.response_template in text)
    assert answers == chat  # none lost at a block boundary
    # The toy template is Llama-3's without the date header, which took 50 of a conversation's 127 tokens.
    conversation = next(text for text, _ in texts if spec.response_template in text)
    assert conversation.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are")
    assert LLAMA_DATE_HEADER.strip() not in conversation
    # A repeated passage is trained on its second half only: the labelled tokens are those of the passage.
    text, start = next((text, start) for text, start in texts if start and spec.response_template not in text)
    assert text[:start] == text[start:]
    # Best fit leaves little padding (first fit in order left about a fifth of every block empty).
    padding = sum(
        label == -100 and token == tokenizer.pad_token_id
        for b, ls in zip(blocks, labels)
        for token, label in zip(b, ls)
    )
    assert padding / (256 * len(blocks)) < 0.12
    with pytest.raises(ValueError, match="more than --block_size 16"):
        pack(tokenizer, texts, 16)


def test_toy_data_is_a_function_of_the_seed(tmp_path):
    # Pinned, so a seed that changed between processes or versions would show.
    assert [r["question"] for r in task_records("toy_arithmetic", 5, 3)] == [
        "What is (3 - 1) + 3?", "What is (6 + 1) - 4?", "What is (9 - 8) + 0?", "What is (7 - 3) + 4?",
        "What is (8 - 5) + 1?",
    ]  # fmt: skip
    assert task_records("toy_arithmetic", 5, 3)[0]["answer"] == "#### 5"
    assert task_records("toy_arithmetic", 5, 3) != task_records("toy_arithmetic", 5, 4)
    written = write_task_data(tmp_path, render=lambda item: f"<prompt>{item['document']}")
    digest = hashlib.sha256(json.dumps(choice_records(50, 1), sort_keys=True).encode()).hexdigest()
    assert digest[:16] == "59be4f6ece8a5c2a"
    for record in choice_records(50, 1):
        sentences = [s.rstrip(".") + "." for s in record["document"].split(". ")]
        assert len(set(record["choices"])) == 4 and record["choices"][record["label"]] == sentences[0]
        # distractors: the article's later sentences first, then sentences of other articles
        distractors = [c for i, c in enumerate(record["choices"]) if i != record["label"]]
        assert set(sentences[1:]) <= set(distractors)
    items = [json.loads(line) for line in (tmp_path / "toy_choice" / "test.jsonl").read_text().splitlines()]
    assert items[0]["prompt"] == f"<prompt>{items[0]['document']}"
    yaml_text = (written["toy_choice"] / "toy_choice.yaml").read_text()
    assert str((tmp_path / "toy_choice").resolve()) in yaml_text and "${" not in yaml_text
    probe = [json.loads(line) for line in (tmp_path / "toy_probe.jsonl").read_text().splitlines()]
    assert probe[0]["context"].startswith("\n\nQ: What is (") and probe[0]["context"].endswith("\n\nA:")
    assert int(probe[0]["completion"]) == eval(probe[0]["context"].split("What is ")[1].split("?")[0])  # noqa: S307


def test_toy_classification_runs_through_lm_eval(tmp_path):
    """The toy classification task (configs/tasks/lm_eval/toy_choice.yaml) on a toy-tokenizer model: lm-eval
    log-likelihood multiple choice on the chat-rendered toy_copy prompt, per-item scores written for the
    bootstrap, and each item's verdict that of the choices' summed log-likelihoods computed directly."""
    import torch
    import transformers

    from eval import classification
    from infra.study_models import toy_model

    model = tmp_path / "toy"
    data = tmp_path / "data"
    assert (
        toy_model.main(
            ["--output_dir", str(model), "--data_dir", str(data), "--steps", "2", "--train_examples", "30"]
        )
        == 0
    )
    out = tmp_path / "classification"
    code = classification.main(
        [
            "--model",
            str(model),
            "--output_dir",
            str(out),
            "--tasks",
            "toy_choice",
            "--include_path",
            str(data / "lm_eval"),
            "--limit",
            "8",
            "--num_fewshot",
            "0",
            "--dtype",
            "float32",
        ]
    )
    assert code == 0
    summary = json.loads((out / "classification.json").read_text())
    items = [json.loads(line) for line in (out / "toy_choice.jsonl").read_text().splitlines()]
    assert len(items) == 8 and summary["n"] == {"toy_choice": 8}
    assert summary["scores"]["toy_choice"] == pytest.approx(sum(i["score"] for i in items) / 8)
    # The same verdicts from the model directly: the prompt (one BOS, from the chat template) then each choice.
    tokenizer = transformers.AutoTokenizer.from_pretrained(model)
    lm = transformers.AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    records = [json.loads(line) for line in (data / "toy_choice" / "test.jsonl").read_text().splitlines()]
    assert records[0]["prompt"].count("<|begin_of_text|>") == 1
    assert records[0]["prompt"].endswith(load_model_spec("toy-llama").response_template)
    for item in items:
        record = records[int(item["id"].rsplit("/", 1)[1])]
        context = tokenizer(record["prompt"], add_special_tokens=False)["input_ids"]
        totals = []
        for choice in record["choices"]:
            ids = tokenizer(record["prompt"] + choice, add_special_tokens=False)["input_ids"]
            assert ids[: len(context)] == context
            with torch.no_grad():
                logits = lm(torch.tensor([ids])).logits[0].log_softmax(-1)
            totals.append(sum(logits[i - 1, ids[i]].item() for i in range(len(context), len(ids))))
        assert item["score"] == float(max(range(4), key=totals.__getitem__) == record["label"])


def test_toy_model_rebuilds_bit_identically_with_its_final_loss(tmp_path):
    """Two builds of the same recipe on one machine: the same weights, byte for byte, and the manifest
    (toy.json) records the final loss; another seed gives other weights."""
    import hashlib

    from infra.study_models import toy_model

    def build(name: str, seed: int) -> tuple[str, dict]:
        out = tmp_path / name
        argv = ["--output_dir", str(out), "--data_dir", str(tmp_path / "data"), "--steps", "6"]
        assert toy_model.main([*argv, "--train_examples", "60", "--seed", str(seed), "--force"]) == 0
        digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
        return digest, json.loads((out / "toy.json").read_text())

    first, manifest = build("a", 0)
    second, again = build("b", 0)
    other, _ = build("c", 1)
    assert first == second and first != other
    assert manifest["final_loss"] == again["final_loss"] > 0
    assert manifest["recipe"]["seed"] == 0 and manifest["recipe"]["steps"] == 6
    # The saved model carries the toy template, which every stage renders its prompts with.
    assert (tmp_path / "a" / "chat_template.jinja").read_text() == toy_model.TOY_CHAT_TEMPLATE


def test_the_shipped_toy_model_is_the_default_recipes_and_is_copied_not_trained(tmp_path, capsys):
    """The shipped model (infra/study_models/toy_llama) is what the default recipe (seed 0) trains: a recipe
    change without a new model fails here. Asked for, it is copied byte for byte; another seed is not it."""
    from infra.study_models import toy_model

    shipped = json.loads((toy_model.SHIPPED_MODEL / "toy.json").read_text())
    assert shipped["recipe"] == toy_model.recipe_key(toy_model.ToyModelArgs())
    assert shipped["final_loss"] < 0.3 and shipped["recipe"]["steps"] == 3000
    assert toy_model.shipped_model(toy_model.ToyModelArgs(seed=1)) is None
    assert toy_model.shipped_model(toy_model.ToyModelArgs(steps=300)) is None
    out = tmp_path / "toy-llama"
    assert toy_model.main(["--output_dir", str(out), "--data_dir", str(tmp_path / "data")]) == 0
    assert "the shipped model of this recipe" in capsys.readouterr().out
    for name in ("model.safetensors", "config.json", "tokenizer.json", "toy.json"):
        assert (out / name).read_bytes() == (toy_model.SHIPPED_MODEL / name).read_bytes(), name
    assert (tmp_path / "data" / "toy_arithmetic.jsonl").is_file()
    assert toy_model.main(["--output_dir", str(out), "--data_dir", str(tmp_path / "data")]) == 0
    assert "is up to date" in capsys.readouterr().out
