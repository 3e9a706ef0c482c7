"""Runs vLLM (its CPU build in CI) in a process of its own: ``LLM`` starts engine processes, so it must be
created under ``if __name__ == "__main__":``.

    python tests/helpers/vllm_check.py <job.json> <result.json>

Jobs (``"kind"``):
- ``candidates``: one engine started with in-engine candidates on ``model``: greedy tokens and their
  log-probabilities for ``prompts`` with every layer, with ``removed`` skipped inside the engine, and with
  every layer again; then an engine on the ``pruned`` checkpoint (compiled, as an evaluation starts it;
  uncompiled with ``"pruned_eager": true``), the same prompts.
- ``backend``: :class:`infra.generation.VLLMBackend` on ``model`` (optionally ``adapter``): each
  ``requests`` entry ({"sampling": {...}, "seeds": [...]}) generated, the completions as records.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path


def greedy_with_logprobs(backend, prompts: list[str], max_tokens: int) -> list[dict]:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    ids = [backend.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, logprobs=0, ignore_eos=True)
    outputs = backend.llm.generate([TokensPrompt(prompt_token_ids=i) for i in ids], params, use_tqdm=False)
    results = []
    for output in outputs:
        choice = output.outputs[0]
        logprobs = [step[token].logprob for step, token in zip(choice.logprobs, choice.token_ids)]
        results.append({"tokens": list(choice.token_ids), "logprobs": logprobs})
    return results


def same_greedy(first: list[dict], second: list[dict], tolerance: float) -> bool:
    """The same greedy tokens for every prompt, their log-probabilities within ``tolerance``: CPU kernels may
    sum in another order from one call to the next (about 1e-7 in float32); a layer left out moves them by
    far more than 1e-3."""
    return len(first) == len(second) and all(
        a["tokens"] == b["tokens"]
        and max((abs(x - y) for x, y in zip(a["logprobs"], b["logprobs"])), default=0.0) <= tolerance
        for a, b in zip(first, second)
    )


def run_candidates(job: dict) -> dict:
    from infra.generation import VLLMBackend

    full = VLLMBackend(job["model"], dtype="float32", max_model_len=job["max_model_len"], candidates=True)
    result = {"num_layers": full.num_layers}
    result["full_before"] = greedy_with_logprobs(full, job["prompts"], job["max_tokens"])
    with full.layers_removed(job["removed"]):
        result["in_engine"] = greedy_with_logprobs(full, job["prompts"], job["max_tokens"])
    result["full_after"] = greedy_with_logprobs(full, job["prompts"], job["max_tokens"])
    del full
    gc.collect()
    pruned = VLLMBackend(
        job["pruned"],
        dtype="float32",
        max_model_len=job["max_model_len"],
        enforce_eager=job.get("pruned_eager", False),
    )
    result["pruned_checkpoint"] = greedy_with_logprobs(pruned, job["prompts"], job["max_tokens"])
    return result


def run_backend(job: dict) -> dict:
    from infra.generation import SamplingConfig, VLLMBackend

    backend = VLLMBackend(
        job["model"],
        adapter=job.get("adapter"),
        dtype="float32",
        max_model_len=job["max_model_len"],
        stop_tokens=job.get("stop_tokens"),
        max_lora_rank=job.get("max_lora_rank", 64),
    )
    answers = []
    for request in job["requests"]:
        completions = backend.generate(
            job["prompts"], SamplingConfig(**request["sampling"]), request.get("seeds")
        )
        answers.append([[c.as_record() for c in per_prompt] for per_prompt in completions])
    return {"answers": answers}


def run_job(job: dict, workdir: Path) -> dict:
    """Run ``job`` through this script in a process of its own (vLLM's CPU build, a small KV cache); the
    result, or an assertion error carrying the end of the process's stderr."""
    import os
    import subprocess

    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    job_path, result_path = Path(workdir) / "job.json", Path(workdir) / "result.json"
    job_path.write_text(json.dumps(job))
    process = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(job_path), str(result_path)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    return json.loads(result_path.read_text())


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    job = json.loads(Path(sys.argv[1]).read_text())
    runner = {"candidates": run_candidates, "backend": run_backend}[job["kind"]]
    Path(sys.argv[2]).write_text(json.dumps(runner(job)))
