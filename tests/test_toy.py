"""The toy study's data: tasks are pure functions of a seed, training blocks never split an example, and the
toy classification and probe files are in the formats lm-eval and the probe read."""

from __future__ import annotations

import json

import pytest

from infra.model_spec import load_model_spec
from infra.tiny_models import build_tokenizer
from infra.toy_model import pack, tokenizer_corpus_texts, training_texts
from infra.toy_tasks import choice_records, task_records, write_task_data


@pytest.fixture(scope="module")
def toy_tokenizer():
    spec = load_model_spec("toy-llama")
    tokenizer = build_tokenizer(
        "llama", vocab_size=512, seed=0, individual_digits=True, extra_corpus=tokenizer_corpus_texts(spec, 0)
    )
    return spec, tokenizer


def test_training_blocks_never_split_an_example(toy_tokenizer):
    spec, tokenizer = toy_tokenizer
    texts = training_texts(tokenizer, spec, 60, seed=0)
    blocks, labels = pack(tokenizer, texts, 256, spec.response_template)
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
    chat = sum(1 for _, whole in texts if not whole)
    assert answers == chat  # none lost at a block boundary
    with pytest.raises(ValueError, match="more than --block_size 16"):
        pack(tokenizer, texts, 16, spec.response_template)


def test_toy_data_is_a_function_of_the_seed(tmp_path):
    assert task_records("toy_arithmetic", 5, 3) == task_records("toy_arithmetic", 5, 3)
    assert task_records("toy_arithmetic", 5, 3) != task_records("toy_arithmetic", 5, 4)
    written = write_task_data(tmp_path)
    records = choice_records(50, 1)
    for record in records:
        assert len(set(record["choices"])) == 4 and 0 <= record["label"] < 4
        question = record["question"].removeprefix("What is ").removesuffix("?")
        assert int(record["choices"][record["label"]]) == eval(question)  # noqa: S307 - digits and + -
    yaml_text = (written["toy_choice"] / "toy_choice.yaml").read_text()
    assert str((tmp_path / "toy_choice").resolve()) in yaml_text and "${" not in yaml_text
    probe = [json.loads(line) for line in (tmp_path / "toy_probe.jsonl").read_text().splitlines()]
    assert probe[0]["context"].startswith("\n\nQ: What is (") and probe[0]["context"].endswith("\n\nA:")
    assert int(probe[0]["completion"]) == eval(probe[0]["context"].split("What is ")[1].split("?")[0])  # noqa: S307


def test_toy_classification_runs_through_lm_eval(tmp_path):
    """The toy classification task (configs/tasks/lm_eval/toy_choice.yaml) on a toy-tokenizer model: lm-eval
    log-likelihood multiple choice, per-item scores written for the bootstrap."""
    from eval import classification
    from infra import toy_model

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
            "3",
            "--dtype",
            "float32",
        ]
    )
    assert code == 0
    summary = json.loads((out / "classification.json").read_text())
    items = [json.loads(line) for line in (out / "toy_choice.jsonl").read_text().splitlines()]
    assert len(items) == 8 and summary["n"] == {"toy_choice": 8}
    assert summary["scores"]["toy_choice"] == pytest.approx(sum(i["score"] for i in items) / 8)
