from __future__ import annotations

import pytest

from infra.generation import HFBackend, SamplingConfig, cut_at_stop, derive_seed
from infra.modeling import load_model, load_tokenizer

PROMPTS = ["Question: What is 2 + 3?\nAnswer:", "def add(x, y):", "The council met on", "Hello"]


@pytest.fixture(scope="module")
def backend(tiny_models):
    path = str(tiny_models["llama"])
    return HFBackend(
        load_model(path, dtype="float32", device="cpu"), load_tokenizer(path), batch_size=4, progress=False
    )


def texts(results):
    return [[c.text for c in completions] for completions in results]


def test_same_seed_same_text_regardless_of_batching(backend):
    sampling = SamplingConfig(temperature=1.0, top_k=0, max_new_tokens=12)
    seeds = [derive_seed(7, str(i)) for i in range(len(PROMPTS))]
    first = backend.generate(PROMPTS, sampling, seeds)
    backend.batch_size = 1
    try:
        again = backend.generate(PROMPTS, sampling, seeds)
    finally:
        backend.batch_size = 4
    assert texts(first) == texts(again)
    other = backend.generate(PROMPTS, sampling, [derive_seed(8, str(i)) for i in range(len(PROMPTS))])
    assert texts(other) != texts(first)
    assert all(c.num_tokens == 12 and c.finish_reason == "length" for cs in first for c in cs)


def test_n_samples_per_prompt(backend):
    sampling = SamplingConfig(temperature=1.0, top_k=0, max_new_tokens=10, n=3)
    results = backend.generate(PROMPTS[:2], sampling, [1, 2])
    assert [len(cs) for cs in results] == [3, 3]
    assert [c.sample_index for c in results[0]] == [0, 1, 2]
    assert len({c.text for c in results[0]}) == 3  # three different draws


def test_greedy_is_deterministic(backend):
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=8)
    assert texts(backend.generate(PROMPTS, sampling)) == texts(
        backend.generate(PROMPTS, sampling, [9, 9, 9, 9])
    )


def test_stop_strings_cut_the_text(backend):
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=16)
    full = backend.generate(PROMPTS[:1], sampling)[0][0]
    assert len(full.text) > 4
    stop = full.text[2:4]
    cut = backend.generate(
        PROMPTS[:1], SamplingConfig(temperature=0.0, max_new_tokens=16, stop_strings=[stop])
    )
    completion = cut[0][0]
    assert completion.finish_reason == "stop"
    assert completion.text == full.text[: full.text.find(stop)]
    assert stop not in completion.text
    assert completion.num_tokens < 16


def test_eos_ends_with_stop_reason(tiny_models):
    path = str(tiny_models["qwen2"])
    model, tokenizer = load_model(path, dtype="float32", device="cpu"), load_tokenizer(path)
    # Make the end-of-turn token the only likely one: generation must end there.
    import torch

    with torch.no_grad():
        model.lm_head.bias = None
        model.lm_head.weight.zero_()
        model.lm_head.weight[tokenizer.eos_token_id] = 1.0
    result = HFBackend(model, tokenizer, progress=False).generate(["hi"], SamplingConfig(temperature=0.0))
    assert result[0][0].finish_reason == "stop"
    assert result[0][0].num_tokens == 1
    assert result[0][0].text == ""


def test_cut_at_stop_picks_earliest():
    assert cut_at_stop("abc###def```", ["```", "###"]) == ("abc", True)
    assert cut_at_stop("abc", ["x"]) == ("abc", False)


def test_derive_seed_is_stable_across_processes():
    """An item's sampling seed is a hash of (seed, item, sample), the same in every process and on every
    machine (Python's own hash() is salted per process): pinned values."""
    assert derive_seed(1, "gsm8k/3", 0) == 4912215493926924277
    assert derive_seed(1, "gsm8k/3", 1) == 6796350769258022288
    assert derive_seed(0, "x", 0) == 7087324105873474633


def test_lora_adapter_directory_is_applied(tiny_models, tmp_path):
    import torch

    from tests.helpers.adapters import random_lora

    base = load_model(str(tiny_models["llama"]), dtype="float32", device="cpu")
    peft_model = random_lora(base, tmp_path / "adapter")
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
        plain = load_model(str(tiny_models["llama"]), dtype="float32", device="cpu")(input_ids=ids).logits
        loaded = load_model(
            str(tmp_path / "adapter"), dtype="float32", device="cpu"
        )  # the base from its config
        via_flag = load_model(
            str(tiny_models["llama"]), adapter=str(tmp_path / "adapter"), dtype="float32", device="cpu"
        )
        assert torch.allclose(loaded(input_ids=ids).logits, expected, atol=1e-6)
        assert torch.allclose(via_flag(input_ids=ids).logits, expected, atol=1e-6)
    assert not torch.allclose(plain, expected, atol=1e-3)
