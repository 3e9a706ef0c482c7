"""The experiment scripts under a real SLURM controller (one node, Debian's packages, started here as root).

Through sbatch: the toy sweep narrowed to three layers (one array task per layer, the array's indices the
layers), Table 1 narrowed to the iterative search (one array task per block of four candidates, the last block
partial) with its recovery fine-tune. The results must equal the same scripts run locally. An array task that
fails is reported with its state and log, and a resubmission runs only that task.

    bash scripts/run_tests.sh -m slurm        # as root; installs slurmctld, slurmd, slurm-client, munge
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from infra.files import load_jsonl
from infra.paths import REPO_ROOT

# Three of the toy model's seven sweepable layers, and the search's seven candidates in two blocks (4 + 3): each
# array task starts a process of its own, so fewer tasks keep the test short and still check what an array
# of several tasks must do.
SWEEP_LAYERS = (2, 3, 5)
TOY_SETTINGS = {
    "STUDY": "toy_ci",
    "CLASSIFY": "none",
    "SWEEP_LAYERS": " ".join(map(str, SWEEP_LAYERS)),
    "SEARCH_BLOCK": "4",
}
TABLE_1 = {"METHODS": "iterative", "AMOUNTS": "1layers", "RECOVERIES": "none sft-toy"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the one-node SLURM test cluster needs root (it starts munged, slurmctld, slurmd)")
    directory = tmp_path_factory.mktemp("slurm")
    try:  # the daemons stop however the start or the tests end
        start = subprocess.run(
            ["bash", "scripts/slurm/test_cluster.sh", "start", str(directory)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert start.returncode == 0, start.stderr
        yield {"SLURM_CONF": str(directory / "slurm.conf")}
    finally:
        subprocess.run(["bash", "scripts/slurm/test_cluster.sh", "stop", str(directory)], cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    cache = root / "cache"
    return {**TOY_SETTINGS, "LPR_CACHE": str(cache)}


def in_toy_env(command: str, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a shell command with the toy study's CI profile (configs/studies/toy_ci.yaml) on top of ``env``."""
    script = f"source scripts/setup_env.sh >/dev/null && {command}"
    return subprocess.run(
        ["bash", "-c", script],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def submit(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return in_toy_env(
        f"bash scripts/slurm/submit.sh {script} toy-llama --resources configs/slurm/test_cluster.yaml "
        "--wait --poll_seconds 1",
        env,
    )


def records(out: Path) -> list[dict]:
    """Every job of every submission under ``out``, oldest first."""
    jobs = []
    for path in sorted((out / "toy-llama" / "slurm").glob("submission-*.json")):
        jobs.extend(json.loads(path.read_text())["jobs"])
    return jobs


def untimed(path: Path) -> list[dict]:
    """A responses file without its wall-clock field."""
    return [{k: v for k, v in record.items() if k != "latency_s"} for record in load_jsonl(path)]


def scores(path: Path) -> dict:
    return json.loads(path.read_text())["scores"]


@pytest.mark.slurm
@pytest.mark.slow
def test_scripts_on_slurm_equal_local_runs_and_failed_tasks_resubmit_alone(cluster, toy, tmp_path):
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    env = {**cluster, **toy, "OUT": str(on_slurm)}

    # The sweep, with the path of layer 3's responses taken by a directory: its array task fails to write.
    blocker = on_slurm / "toy-llama" / "sweep" / "layer_003.toy_arithmetic.jsonl"
    blocker.mkdir(parents=True)
    failed = submit("scripts/figures1-4_sweep.sh", env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    sweep_array = next(job for job in records(on_slurm) if job["name"] == "toy-llama.sweep.layers")
    assert sweep_array["array"] == list(SWEEP_LAYERS)
    failed_lines = [line for line in failed.stdout.splitlines() if line.startswith("[slurm] FAILED")]
    assert len(failed_lines) == 1 and "toy-llama.sweep.layers (layer 3)" in failed_lines[0], failed.stdout
    log = Path(failed_lines[0].split("log: ")[1])
    assert log.is_file() and "layer_003.toy_arithmetic.jsonl" in log.read_text()
    assert "exit 1:0" in failed_lines[0] or "exit 2:0" in failed_lines[0]
    assert "NEVER_RUN" in failed.stdout  # the collecting run waited for the array: cancelled
    assert "resubmit:" in failed.stdout
    finished = {p.name: p.stat().st_mtime_ns for p in (blocker.parent).glob("layer_00[!3].json")}
    assert sorted(finished) == ["layer_002.json", "layer_005.json"]

    blocker.rmdir()
    again = submit("scripts/figures1-4_sweep.sh", env)
    assert again.returncode == 0, again.stdout + again.stderr
    second = json.loads(sorted((on_slurm / "toy-llama" / "slurm").glob("submission-*.json"))[-1].read_text())
    names = [job["name"] for job in second["jobs"]]
    assert names == ["toy-llama.sweep.layers", "toy-llama.sweep", "toy-llama.artifacts"], names
    assert second["jobs"][0]["array"] == [3]
    assert {p.name: p.stat().st_mtime_ns for p in blocker.parent.glob("layer_00[!3].json")} == finished

    # Table 1's iterative search (its own stage: a baseline job, one array task per block of candidates) and
    # its recovery.
    table = submit("scripts/table1_pruning.sh", {**env, **TABLE_1})
    assert table.returncode == 0, table.stdout + table.stderr
    jobs = {job["name"]: job for job in records(on_slurm)}
    search = "toy-llama.search.iterative-toy_arithmetic+toy_brackets+toy_copy"
    step = jobs[f"{search}.step1"]
    assert step["array"] == [0, 1] and step["after"] == [jobs[f"{search}.baseline"]["id"]]
    assert jobs[search]["id"] in jobs["toy-llama.pruned.iterative-1layers"]["after"]
    train = jobs["toy-llama.recovered.iterative-1layers-sft-toy.train"]
    assert jobs["toy-llama.pruned.iterative-1layers"]["id"] in train["after"]

    # A job the controller no longer knows (and there is no accounting database): reported, not waited for.
    record = tmp_path / "forgotten.json"
    job = {"id": "999999", "name": "toy-llama.gone", "array": None, "array_label": "task", "log": "gone.out"}
    record.write_text(
        json.dumps({"script": "scripts/table1_pruning.sh", "model_config": "toy-llama", "jobs": [job]})
    )
    forgotten = in_toy_env(
        f"python -m orchestration.slurm --report {record} --wait --poll_seconds 1", env, timeout=60
    )
    assert forgotten.returncode == 1 and "UNKNOWN 999999 toy-llama.gone" in forgotten.stdout, forgotten.stdout

    # The same scripts run locally.
    for script, extra in (("scripts/figures1-4_sweep.sh", {}), ("scripts/table1_pruning.sh", TABLE_1)):
        result = in_toy_env(f"bash {script} toy-llama", {**toy, **extra, "OUT": str(local)})
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    a, b = on_slurm / "toy-llama", local / "toy-llama"
    assert scores(a / "sweep" / "baseline.json") == scores(b / "sweep" / "baseline.json")
    assert sorted(p.name for p in (b / "sweep").glob("layer_*.json")) == [
        f"layer_{layer:03d}.json" for layer in SWEEP_LAYERS
    ]
    for layer in SWEEP_LAYERS:
        name = f"layer_{layer:03d}"
        assert scores(a / "sweep" / f"{name}.json") == scores(b / "sweep" / f"{name}.json"), name
        for responses in sorted((b / "sweep").glob(f"{name}.*.jsonl")):
            assert untimed(a / "sweep" / responses.name) == untimed(responses), responses.name
    assert (a / "sweep" / "manifest.json").is_file()
    search = Path("search/iterative-toy_arithmetic+toy_brackets+toy_copy")
    candidates = sorted(p.name for p in (b / search / "step_01").glob("layer_*.json"))
    assert len(candidates) == 7
    for name in candidates:
        assert scores(a / search / "step_01" / name) == scores(b / search / "step_01" / name), name
    plan = "pruned/iterative-1layers/model/plan.json"
    assert (
        json.loads((a / plan).read_text())["removed_layers"]
        == json.loads((b / plan).read_text())["removed_layers"]
    )
    run = "recovered/iterative-1layers-sft-toy"

    def loss(root: Path) -> list[float]:
        return [
            m["train_loss"] for m in load_jsonl(root / run / "train" / "metrics.jsonl") if "train_loss" in m
        ]

    assert loss(a) == pytest.approx(loss(b), rel=1e-6) and len(loss(a)) == 2
    for task in ("toy_arithmetic", "toy_brackets", "toy_copy"):
        assert (
            json.loads((a / run / "eval" / f"{task}.json").read_text())["score"]
            == json.loads((b / run / "eval" / f"{task}.json").read_text())["score"]
        ), task
    assert (a / "artifacts" / "table_1.md").is_file()


def dry_run(
    script: str, env: dict[str, str], model: str = "llama-3.1-8b-instruct", *flags: str
) -> list[list[str]]:
    result = subprocess.run(
        ["bash", "scripts/slurm/submit.sh", script, model, "--dry_run", *flags],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines() if line.startswith("sbatch")]


def test_an_unreadable_queue_is_named_by_a_dry_run_and_stops_a_submission(tmp_path):
    """A login node whose SLURM client has no configuration (squeue exits 1): the dry run shows every job and
    says the queue was not read; a submission stops, since it could duplicate queued jobs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"
    squeue.write_text(
        "#!/bin/sh\necho 'squeue: fatal: Could not establish a configuration source' >&2\nexit 1\n"
    )
    squeue.chmod(0o755)
    config = tmp_path / "slurm.conf"
    config.write_text("ClusterName=unreachable\n")
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_CONF": str(config),
    }
    args = ["bash", "scripts/slurm/submit.sh", "scripts/table1_pruning.sh", "llama-3.1-8b-instruct"]
    dry = subprocess.run([*args, "--dry_run"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "the queue could not be read (squeue: fatal: Could not establish" in dry.stderr
    assert sum(line.startswith("sbatch") for line in dry.stdout.splitlines()) > 1
    real = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert real.returncode != 0 and "squeue failed (exit 1)" in real.stderr, real.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("submission-*.json"))


def option(line: list[str], name: str) -> str | None:
    return next((arg.split("=", 1)[1] for arg in line if arg.startswith(f"--{name}=")), None)


def test_dry_run_sizes_arrays_from_the_model_config_and_chains_the_steps(tmp_path):
    """Llama (32 layers), the paper's grid, no cluster: the sbatch lines the submitter would run."""
    env = {"OUT": str(tmp_path / "out")}
    sweep = dry_run("scripts/figures1-4_sweep.sh", env)
    assert option(sweep[0], "array") == "1-31" and option(sweep[0], "gres") == "gpu:1"
    assert option(sweep[0], "wrap").endswith('--layer "$SLURM_ARRAY_TASK_ID"')
    assert option(sweep[1], "dependency") == "afterok:<0>" and "--layers 1,2,3" in option(sweep[1], "wrap")
    # the figures after the sweep, probe, profile
    assert option(sweep[-1], "dependency") == "afterok:<1>:<2>:<3>"
    assert "analysis.build_artifacts" in option(sweep[-1], "wrap") and option(sweep[-1], "gres") is None

    table = dry_run("scripts/table2_recovery.sh", env)
    names = [option(line, "job-name") for line in table]
    search = "llama-3.1-8b-instruct.search.iterative-gsm8k+humaneval+xsum"
    baseline = names.index(f"{search}.baseline")
    assert option(table[baseline], "wrap").endswith("--baseline_only")
    steps = table[baseline + 1 : baseline + 9]  # 25% of 32 layers: 8 steps, layer 0 never a candidate
    # 31, 30, ... 24 candidates per step in blocks sharing one engine, a step over 8 array tasks at most.
    sizes = [math.ceil(count / 8) for count in range(31, 23, -1)]
    expected = [f"0-{math.ceil(count / size) - 1}" for count, size in zip(range(31, 23, -1), sizes)]
    assert [option(line, "array") for line in steps] == expected and len({*expected}) > 1
    assert all(
        f"--block_size {size} --candidate_block" in option(line, "wrap") for line, size in zip(steps, sizes)
    )
    assert [option(line, "dependency") for line in steps] == [f"afterok:<{baseline + k}>" for k in range(8)]
    final = table[baseline + 9]
    assert option(final, "dependency") == f"afterok:<{baseline + 8}>" and option(final, "array") is None
    prune = names.index("llama-3.1-8b-instruct.pruned.iterative-25pct")
    assert f"<{baseline + 9}>" in option(table[prune], "dependency").split(
        ":"
    )  # pruned after the search ends
    blocks = dry_run("scripts/table2_recovery.sh", env, "llama-3.1-8b-instruct", "--block_size", "31")
    names = [option(line, "job-name") for line in blocks]
    assert option(blocks[names.index(f"{search}.step1")], "array") == "0"  # one engine for the whole step
    assert not (tmp_path / "out" / "llama-3.1-8b-instruct" / "slurm").exists()


def test_full_fine_tuning_asks_for_the_gpus_its_launcher_starts(tmp_path):
    """Figure 12's full fine-tuning runs under accelerate with DeepSpeed ZeRO-3 on 8 processes: its job asks
    for 8 GPUs and 8 times a GPU's CPUs and memory; QLoRA jobs ask for one."""
    lines = dry_run("scripts/figure12_full_ft.sh", {"OUT": str(tmp_path)}, "qwen2.5-7b-instruct")
    full = next(line for line in lines if "--recipe full" in option(line, "wrap"))
    assert (option(full, "gres"), option(full, "cpus-per-task"), option(full, "mem")) == (
        "gpu:8",
        "64",
        "512G",
    )
    qlora = next(line for line in lines if "--recipe qlora" in option(line, "wrap"))
    assert (option(qlora, "gres"), option(qlora, "cpus-per-task")) == ("gpu:1", "8")
    fsdp = dry_run(
        "scripts/figure12_full_ft.sh",
        {"OUT": str(tmp_path), "FULL_LAUNCH": "torchrun --nproc_per_node 4"},
        "qwen2.5-7b-instruct",
    )
    full = next(line for line in fsdp if "--recipe full" in option(line, "wrap"))
    assert option(full, "gres") == "gpu:4"


def test_each_jobs_time_limit_comes_from_its_stages_estimate(tmp_path):
    """A job asks for its stage's A100-hours with the resources file's margin, never more than the cluster's
    limit (configs/slurm/a100.yaml): a Dolci fine-tune more than an evaluation."""
    from orchestration.slurm import load_resources

    resources = load_resources("configs/slurm/a100.yaml")
    lines = dry_run("scripts/table2_recovery.sh", {"OUT": str(tmp_path)})

    def hours(line: list[str]) -> float:
        h, m, _ = option(line, "time").split(":")
        return int(h) + int(m) / 60

    train = next(
        line for line in lines if "train.sft" in option(line, "wrap") and "dolci" in option(line, "wrap")
    )
    evaluate = next(line for line in lines if "eval.generative" in option(line, "wrap"))
    assert hours(evaluate) < hours(train) <= float(resources["max_hours"])


def test_a_second_script_waits_for_the_jobs_the_first_queued(tmp_path):
    """Two scripts that share runs (Tables 2 and 6 share every Dolci SGR run at 25%): with the first's jobs in
    the queue, the second submits none of them again and waits for the queued ones."""
    from orchestration.plan import plan_stages
    from orchestration.slurm_jobs import build_jobs
    from orchestration.study import load_study

    study = load_study("paper", {"OUT": str(tmp_path)})
    results = Path(tmp_path / "llama-3.1-8b-instruct")
    first = build_jobs(
        plan_stages("table2_recovery", "llama-3.1-8b-instruct", study).graph, "llama-3.1-8b-instruct", results
    )
    queued = {(job.name, job.comment()): f"10{i}" for i, job in enumerate(first)}
    second = build_jobs(
        plan_stages("table6_ratios", "llama-3.1-8b-instruct", study).graph,
        "llama-3.1-8b-instruct",
        results,
        queued,
    )
    names = {job.name for job in second}
    assert not names & {job.name for job in first} - {"llama-3.1-8b-instruct.artifacts"}
    train = next(
        job for job in second if job.name == "llama-3.1-8b-instruct.recovered.bi-10pct-sgr-dolci.train"
    )
    queued_sgr = queued[
        ("llama-3.1-8b-instruct.data.dolci.sgr.jsonl", str(results / "data" / "dolci.sgr.jsonl"))
    ]
    assert queued_sgr in train.after  # the queued self-generation, by its job id


@pytest.mark.slurm
@pytest.mark.slow
def test_a_second_submission_while_the_first_is_queued_adds_nothing_shared(cluster, toy, tmp_path):
    """On the one-node cluster: Table 1's jobs held in the queue, then Table 2's submission (which shares the
    unpruned model's scores and the pruned model) submits only what Table 1 does not make."""
    env = {**cluster, **toy, "OUT": str(tmp_path), "METHODS": "bi"}
    held = in_toy_env(
        "bash scripts/slurm/submit.sh scripts/table1_pruning.sh toy-llama --resources configs/slurm/test_cluster.yaml "
        "--sbatch=--hold",
        env,
    )
    assert held.returncode == 0, held.stdout + held.stderr
    try:
        again = in_toy_env(
            "bash scripts/slurm/submit.sh scripts/table2_recovery.sh toy-llama --resources "
            "configs/slurm/test_cluster.yaml --sbatch=--hold",
            env,
        )
        assert again.returncode == 0, again.stdout + again.stderr
        first, second = (
            json.loads(path.read_text())["jobs"]
            for path in sorted((tmp_path / "toy-llama" / "slurm").glob("submission-*.json"))
        )
        shared = {"toy-llama.base.eval", "toy-llama.pruned.bi-25pct", "toy-llama.pruned.bi-25pct.eval"}
        assert shared <= {job["name"] for job in first}
        assert not shared & {job["name"] for job in second}
        assert "already queued or running" in again.stdout
        prune_id = next(job["id"] for job in first if job["name"] == "toy-llama.pruned.bi-25pct")
        train = next(job for job in second if job["name"] == "toy-llama.recovered.bi-25pct-sgr-toy.train")
        assert prune_id in train["after"]
    finally:
        subprocess.run(["scancel", "--user", "root"], env={**os.environ, **cluster}, capture_output=True)
