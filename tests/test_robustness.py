"""Results are never silently wrong: stale outputs are not relabelled, concurrent writers are refused,
expected failures are one line with exit 2, killed runs leave nothing a later stage would trust, and
outputs follow the umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from eval import generative
from infra.config import ConfigError
from infra.files import (
    OutputBusyError,
    atomic_directory,
    atomic_write_text,
    clean_stale_scratch,
    output_lock,
    scratch_directory,
)
from infra.paths import REPO_ROOT


def eval_args(model, config, real_data, output_dir, *extra):
    return [
        "--model",
        str(model),
        "--model_config",
        str(config),
        "--tasks",
        "gsm8k",
        "--data",
        f"gsm8k={real_data / 'gsm8k' / 'test.jsonl.gz'}",
        "--limit",
        "3",
        "--max_new_tokens",
        "6",
        "--batch_size",
        "3",
        "--output_dir",
        str(output_dir),
        *extra,
    ]


def test_rerun_with_another_model_is_refused_never_relabelled(
    tiny_models, model_config_file, real_data, tmp_path, capsys
):
    llama = model_config_file("llama", tiny_models["llama"])
    qwen = model_config_file("qwen2", tiny_models["qwen2"])
    out = tmp_path / "run"
    assert generative.main(eval_args(tiny_models["llama"], llama, real_data, out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "manifest.json"}
    capsys.readouterr()
    # Another model, and the same model at another temperature: refused in one line, nothing changed.
    for args in (
        eval_args(tiny_models["qwen2"], qwen, real_data, out),
        eval_args(tiny_models["llama"], llama, real_data, out, "--temperature", "0.5"),
    ):
        assert generative.main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1 and "--overwrite" in err
        after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "manifest.json"}
        assert after == before
    # With --overwrite the other model's responses replace the old ones, labelled with what made them.
    assert generative.main(eval_args(tiny_models["qwen2"], qwen, real_data, out, "--overwrite")) == 0
    meta = json.loads((out / "gsm8k.generations.jsonl.meta.json").read_text())
    assert meta["model"] == str(tiny_models["qwen2"]) and meta["model_config"] == "tiny-qwen2"
    summary = json.loads((out / "gsm8k.json").read_text())
    assert summary["model"] == str(tiny_models["qwen2"]) and summary["signature"] == meta


def test_concurrent_writer_is_refused(tiny_models, model_config_file, real_data, tmp_path, capsys):
    out = tmp_path / "busy"
    config = model_config_file("llama", tiny_models["llama"])
    # Another process holds the directory's lock, as a running eval would.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom infra.files import output_lock\n"
            f"with output_lock({str(out / '.lock')!r}):\n    print('locked', flush=True)\n    time.sleep(60)\n",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert generative.main(eval_args(tiny_models["llama"], config, real_data, out)) == 2
        err = capsys.readouterr().err
        assert f"held by pid {holder.pid}" in err
        assert not (out / "gsm8k.generations.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    # The lock goes with the process: once the holder is dead, a run proceeds.
    assert generative.main(eval_args(tiny_models["llama"], config, real_data, out)) == 0


def test_lock_refuses_a_second_holder(tmp_path):
    with output_lock(tmp_path / "x.lock"):
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from infra.files import output_lock\nwith output_lock({str(tmp_path / 'x.lock')!r}): pass",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        assert child.returncode != 0 and "OutputBusyError" in child.stderr
    with output_lock(tmp_path / "x.lock"):  # released: taken again
        pass
    assert OutputBusyError.__mro__[1] is RuntimeError


CLI_CASES = {
    "eval.generative": ["--model", "/nonexistent/model", "--tasks", "gsm8k", "--output_dir", "{tmp}/e"],
    "eval.classification": ["--model", "/nonexistent/model", "--output_dir", "{tmp}/c"],
    "self_generate.generate": [
        "--model",
        "/nonexistent/model",
        "--prompts",
        "{tmp}/p.jsonl",
        "--output",
        "{tmp}/o.jsonl",
    ],
    "self_generate.prepare": ["--dataset", "{tmp}/latin1.jsonl", "--output", "{tmp}/prepared.jsonl"],
    "layer_pruner.prune": [
        "--model",
        "/nonexistent/model",
        "--method",
        "reverse",
        "--n",
        "2",
        "--output_dir",
        "{tmp}/x",
    ],
}
CLI_CASES.update(
    {
        "train.merge_adapter": ["--adapter", "{tmp}/no-adapter", "--output_dir", "{tmp}/m"],
        "analysis.bi_profile": ["--model", "/nonexistent/model", "--output_dir", "{tmp}/b"],
        "analysis.code_errors": ["--items", "{tmp}/p.jsonl", "--output", "{tmp}/c.json"],
        "layer_pruner.sweep": ["--model", "/nonexistent/model", "--output_dir", "{tmp}/s"],
        "layer_pruner.search": [
            "--model",
            "/nonexistent/model",
            "--model_config",
            "llama-3.1-8b-instruct",
            "--steps",
            "2",
            "--output_dir",
            "{tmp}/search",
        ],  # fmt: skip
        "eval.retention": ["--baseline", "{tmp}/no-base", "--runs", "{tmp}/no-run", "--output", "{tmp}/t.md"],
        "orchestration.gpu_hours": ["--model_config", "no-such-model"],
        "infra.study_models.real_model": ["--gguf", "{tmp}/no-wheel/model.gguf", "--output_dir", "{tmp}/r"],
    }
)
CLI_EXPECTED = {
    "eval.generative": "/nonexistent/model",
    "eval.classification": "/nonexistent/model",
    "self_generate.generate": "/nonexistent/model",
    "self_generate.prepare": "latin1.jsonl:2: not UTF-8",
    "layer_pruner.prune": "/nonexistent/model",
    "train.merge_adapter": "no-adapter",
    "analysis.bi_profile": "openai/gsm8k",  # its calibration texts are read first
    "analysis.code_errors": "p.jsonl:1: no code outcome",
    "layer_pruner.sweep": "/nonexistent/model",
    "layer_pruner.search": "/nonexistent/model",
    "eval.retention": "no-base",
    "orchestration.gpu_hours": "no-such-model",
    "infra.study_models.real_model": "model.gguf: no such file",
}


@pytest.mark.parametrize("module", sorted(CLI_CASES))
def test_expected_failures_are_one_line(module, tmp_path):
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prompt": "hi"}\n')
    (tmp_path / "latin1.jsonl").write_bytes(b'{"prompt": "ok", "output": "x"}\n{"prompt": "caf\xe9"}\n')
    args = [a.format(tmp=tmp_path) for a in CLI_CASES[module]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True, env=env
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:") or "Traceback" in line]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error:") and CLI_EXPECTED[module] in lines[0], lines
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback_behind_the_one_line(tmp_path):
    """LPR_DEBUG=1 (or --debug) prints the whole traceback above the same one line."""
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in CLI_CASES["layer_pruner.prune"]]
    for extra, env in (([], {"LPR_DEBUG": "1"}), (["--debug"], {})):
        result = subprocess.run(
            [sys.executable, "-m", "layer_pruner.prune", *args, *extra], cwd=REPO_ROOT, capture_output=True,
            text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
        )  # fmt: skip
        assert result.returncode == 2
        assert "Traceback (most recent call last)" in result.stderr
        assert (
            result.stderr.strip().splitlines()[-1].startswith("error:")
            and "/nonexistent/model" in result.stderr
        )


def test_unwritable_output_is_one_line(tiny_models, model_config_file, real_data, tmp_path, capsys):
    if os.geteuid() == 0:
        target = "/proc/lpr-unwritable"  # root may write anywhere on disk; /proc refuses even root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "out")
    config = model_config_file("llama", tiny_models["llama"])
    code = generative.main(eval_args(tiny_models["llama"], config, real_data, target))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    assert target in err, err  # the line names the output it could not write


def test_prepare_never_replaces_a_finished_output(tmp_path, capsys):
    from self_generate import prepare

    source = tmp_path / "alpaca.jsonl"
    source.write_text('{"instruction": "say hi", "input": "", "output": "hi"}\n')
    out = tmp_path / "prompts.jsonl"
    assert prepare.main(["--dataset", str(source), "--output", str(out)]) == 0
    first = out.read_bytes()
    source.write_text('{"instruction": "say bye", "input": "", "output": "bye"}\n')
    assert prepare.main(["--dataset", str(source), "--output", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == first
    assert prepare.main(["--dataset", str(source), "--output", str(out), "--overwrite"]) == 0
    assert b"say bye" in out.read_bytes()


def test_killed_runs_leave_nothing_that_looks_finished(tmp_path):
    final = tmp_path / "pruned"
    # A run killed mid-write (here: a child process that exits without cleaning up).
    code = (
        "import os\nfrom infra.files import atomic_directory, scratch_directory\n"
        f"scratch_directory({str(final)!r}, 'donor')\n"
        f"with atomic_directory({str(final)!r}) as t:\n"
        "    (t / 'config.json').write_text('{}')\n"
        "    os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 9
    leftovers = sorted(p.name.split("-")[0] for p in tmp_path.iterdir())
    assert leftovers == [".pruned.donor", ".pruned.tmp"] and not final.exists()
    mine = scratch_directory(final, "tmp")  # a live run's scratch is kept
    removed = clean_stale_scratch(final)
    assert len(removed) == 2 and sorted(p.name for p in tmp_path.iterdir()) == [mine.name]
    with atomic_directory(final) as temporary:
        (temporary / "config.json").write_text("{}")
    assert (final / "config.json").is_file()


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "d") as temporary:
            atomic_write_text(temporary / "f.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "d" / "f.json").stat().st_mode) == 0o644


def test_sft_resumes_from_the_last_complete_checkpoint(tmp_path):
    from train.sft import last_checkpoint

    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (tmp_path / "checkpoint-6").mkdir()  # killed while saving: no trainer_state.json
    assert last_checkpoint(tmp_path) == (str(tmp_path / "checkpoint-4"), 4)
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text('{"global_st')  # torn
    assert last_checkpoint(tmp_path) == (str(tmp_path / "checkpoint-2"), 2)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
