"""self_generate: prompt preparation from several schemas, and resumable self-generation."""

from __future__ import annotations

import json

import pytest

from infra.config import ConfigError
from infra.files import load_jsonl
from infra.manifest import manifest_beside
from self_generate.generate import GenerateArgs, generate
from self_generate.prepare import PrepareArgs, prepare
from self_generate.prepare import main as prepare_main


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


ALPACA = [
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {"instruction": "Say hi\x00.", "input": "", "output": "Hi\x00!"},
    {"instruction": "   ", "input": "", "output": "nothing to answer"},
    {"instruction": "Write a very long story. " * 200, "input": "", "output": "Once upon a time."},
]


def test_prepare_alpaca_strips_nul_counts_skips_and_keeps_dataset_response(
    tiny_models, model_config_file, tmp_path
):
    source = write_jsonl(tmp_path / "alpaca.jsonl", ALPACA)
    output = tmp_path / "prompts.jsonl"
    config = model_config_file("llama", tiny_models["llama"])
    counts = prepare(
        PrepareArgs(
            dataset=str(source),
            output=str(output),
            max_length=256,
            model=str(tiny_models["llama"]),
            model_config=str(config),
        )
    )
    rows = load_jsonl(output)
    assert [r["id"] for r in rows] == ["alpaca/0", "alpaca/1"]
    # instruction + "\n" + input, as the original's download_and_filter.py joined them
    assert rows[0]["prompt"] == "Add the numbers.\n2 and 3" and rows[0]["response"] == "5"
    assert rows[1]["prompt"] == "Say hi." and rows[1]["response"] == "Hi!"
    assert counts == {
        "records": 4,
        "examined": 4,
        "empty_prompt": 1,
        "no_response": 0,
        "too_long": 1,
        "kept": 2,
    }
    manifest = json.loads(manifest_beside(output).read_text())
    assert manifest["counts"] == counts and manifest["schema"] == "alpaca"


def test_prepare_messages_and_custom_fields(tmp_path):
    dolci = [
        {
            "id": "d-1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris."},
                {"role": "user", "content": "And Italy?"},
                {"role": "assistant", "content": "Rome."},
            ],
        },
        {"id": "d-2", "messages": [{"role": "user", "content": "Unanswered"}]},
    ]
    prepare(
        PrepareArgs(
            dataset=str(write_jsonl(tmp_path / "dolci.jsonl", dolci)), output=str(tmp_path / "d.jsonl")
        )
    )
    rows = load_jsonl(tmp_path / "d.jsonl")
    # The last user message and the last assistant message, as the original took a Dolci conversation.
    assert rows == [
        {
            "id": "dolci/0",
            "prompt": "And Italy?",
            "response": "Rome.",
            "source_index": 0,
            "source_id": "d-1",
        }
    ]
    custom = write_jsonl(
        tmp_path / "c.jsonl", [{"query": "q1", "reply": "r1"}, {"query": "q2", "reply": "r2"}]
    )
    prepare(
        PrepareArgs(
            dataset=str(custom),
            output=str(tmp_path / "c.out.jsonl"),
            prompt_field="query",
            response_field="reply",
        )
    )
    assert [(r["prompt"], r["response"]) for r in load_jsonl(tmp_path / "c.out.jsonl")] == [
        ("q1", "r1"),
        ("q2", "r2"),
    ]


def test_prepare_gsm8k_sample_is_seeded(real_data, tmp_path):
    def sample(seed, name):
        output = tmp_path / name
        prepare(
            PrepareArgs(
                dataset=str(real_data / "gsm8k" / "train.jsonl.gz"), output=str(output), limit=50, seed=seed
            )
        )
        return [r["id"] for r in load_jsonl(output)]

    first, again, other = sample(1, "a.jsonl"), sample(1, "b.jsonl"), sample(2, "c.jsonl")
    assert first == again and len(first) == 50 and len(set(first)) == 50
    assert first != other
    row = load_jsonl(tmp_path / "a.jsonl")[0]
    assert row["response"].strip().splitlines()[-1].startswith("####")


def test_prepare_bad_inputs_are_named_and_lose_nothing(tmp_path, capsys):
    output = tmp_path / "out.jsonl"
    output.write_text('{"id": "kept", "prompt": "earlier result"}\n')
    before = output.read_bytes()
    cases = {
        "empty.jsonl": ("", "no records"),
        "malformed.jsonl": ('{"instruction": "a", "output": "b"}\n{"instruction": \n', "malformed.jsonl:2"),
        "nofield.jsonl": ('{"query": "a"}\n', "prompt_field"),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        # Even with --overwrite, a failing run leaves the earlier output as it was.
        args = ["--dataset", str(tmp_path / name), "--output", str(output), "--overwrite"]
        assert prepare_main(args) == 2
        assert expected in capsys.readouterr().err
        assert output.read_bytes() == before
    (tmp_path / "missing.jsonl").write_text('{"query": "a"}\n')
    with pytest.raises(ConfigError, match=r"missing.jsonl: record 1: no field 'text'"):
        prepare(
            PrepareArgs(
                dataset=str(tmp_path / "missing.jsonl"),
                output=str(output),
                prompt_field="text",
                overwrite=True,
            )
        )
    assert output.read_bytes() == before


PROMPTS = [{"id": f"p{i}", "prompt": f"What is {i} + {i}?"} for i in range(5)]


def test_generation_killed_and_rerun_equals_uninterrupted(
    tiny_models, model_config_file, tmp_path, monkeypatch
):
    from infra.generation import HFBackend

    prompts = write_jsonl(tmp_path / "prompts.jsonl", PROMPTS)
    config = model_config_file("llama", tiny_models["llama"])

    def args(output):
        return GenerateArgs(
            model=str(tiny_models["llama"]),
            model_config=str(config),
            prompts=str(prompts),
            output=str(output),
            n=2,
            batch_size=2,  # one prompt (two samples) per call
            max_new_tokens=12,
            seed=7,
        )

    generate(args(tmp_path / "whole.jsonl"))
    whole = load_jsonl(tmp_path / "whole.jsonl")
    assert sorted((r["id"], r["sample"]) for r in whole) == [(p["id"], s) for p in PROMPTS for s in (0, 1)]
    assert {"id", "sample", "prompt", "response", "finish_reason", "num_tokens"} <= set(whole[0])

    original = HFBackend.generate
    calls = {"n": 0}

    def dies_on_third_call(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the job is killed during the third batch
        return original(self, *a, **k)

    monkeypatch.setattr(HFBackend, "generate", dies_on_third_call)
    interrupted = tmp_path / "interrupted.jsonl"
    with pytest.raises(KeyboardInterrupt):
        generate(args(interrupted))
    assert len(load_jsonl(interrupted)) == 4 and not manifest_beside(interrupted).exists()
    with open(interrupted, "a") as handle:
        handle.write('{"id": "p2", "sample": 0, "resp')  # a record torn by the kill
    monkeypatch.setattr(HFBackend, "generate", original)
    counts = generate(args(interrupted))
    assert counts["already_done"] == 2
    resumed = load_jsonl(interrupted)
    assert len(resumed) == len({(r["id"], r["sample"]) for r in resumed}) == 10
    key = lambda r: (r["id"], r["sample"])  # noqa: E731
    assert sorted(resumed, key=key) == sorted(whole, key=key)
    assert manifest_beside(interrupted).exists()


def test_generation_skips_and_counts_prompts_over_the_context(tiny_models, model_config_file, tmp_path):
    prompts = write_jsonl(tmp_path / "p.jsonl", [*PROMPTS[:2], {"id": "long", "prompt": "many words " * 100}])
    config = model_config_file("llama", tiny_models["llama"], max_context=160)  # short prompts ~105 tokens
    counts = generate(
        GenerateArgs(
            model=str(tiny_models["llama"]),
            model_config=str(config),
            prompts=str(prompts),
            output=str(tmp_path / "o.jsonl"),
            max_new_tokens=4,
        )
    )
    assert counts["too_long"] == 1
    assert [r["id"] for r in load_jsonl(tmp_path / "o.jsonl")] == ["p0", "p1"]


def test_generation_bad_prompt_files(tmp_path):
    cases = {
        "empty.jsonl": ("", "empty file"),
        "noprompt.jsonl": ('{"id": "a"}\n', "noprompt.jsonl:1"),
        "broken.jsonl": ('{"id": "a", "prompt": "x"}\n{oops\n', "broken.jsonl:2"),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=expected):
            generate(
                GenerateArgs(model="unused", prompts=str(tmp_path / name), output=str(tmp_path / "o.jsonl"))
            )
    assert not (tmp_path / "o.jsonl").exists()


def test_generation_caps_prompt_plus_response_at_the_context(tiny_models, model_config_file, tmp_path):
    """As the original's engine (max_model_len 8192): an answer gets at most the context minus its prompt."""
    from infra.model_spec import load_model_spec
    from infra.modeling import load_tokenizer
    from infra.prompts import sft_messages

    config = model_config_file("llama", tiny_models["llama"])
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS[:3])
    counts = generate(
        GenerateArgs(
            model=str(tiny_models["llama"]),
            model_config=str(config),
            prompts=str(prompts),
            output=str(tmp_path / "o.jsonl"),
            max_new_tokens=500,
            max_context=140,
            temperature=1.0,
            top_p=1.0,
        )
    )
    tokenizer = load_tokenizer(str(tiny_models["llama"]))
    spec = load_model_spec(str(config))
    assert counts["too_long"] == 0
    capped = 0
    for record in load_jsonl(tmp_path / "o.jsonl"):
        text = tokenizer.apply_chat_template(
            sft_messages(spec, record["prompt"]), tokenize=False, add_generation_prompt=True
        )
        room = 140 - len(tokenizer(text, add_special_tokens=False)["input_ids"])
        assert 0 < record["num_tokens"] <= room
        capped += record["num_tokens"] == room and record["finish_reason"] == "length"
    assert capped >= 1  # the random model rarely stops by itself: the context, not max_new_tokens, ended it


def test_mistral_self_generation_also_stops_on_inst(tiny_models, tmp_path, monkeypatch):
    import infra.generation_loop as module

    seen = {}
    real = module.make_backend

    def recording(model, config, **kwargs):
        seen.update(kwargs, max_model_len=config.max_model_len)
        return real(model, config, **kwargs)

    monkeypatch.setattr(module, "make_backend", recording)
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS[:1])
    generate(
        GenerateArgs(
            model=str(tiny_models["mistral"]),
            model_config="mistral-7b-instruct-v0.3",
            prompts=str(prompts),
            output=str(tmp_path / "o.jsonl"),
            max_new_tokens=4,
            dtype="float32",
        )
    )
    assert seen["stop_tokens"] == ["</s>", "[INST]"]
    assert seen["max_model_len"] == 1024  # 8192 as the original, capped by the tiny model's 1,024 positions
