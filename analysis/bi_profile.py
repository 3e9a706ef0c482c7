"""Block-influence profile (the paper's cosine notebook): per layer, the cosine between the hidden state
entering and the one leaving it, averaged over tokens and then over the calibration texts, read through
nnsight.

    python -m analysis.bi_profile --model meta-llama/Llama-3.1-8B-Instruct --output_dir outputs/llama/bi_profile
    python -m analysis.bi_profile --model .cache/models/tiny-llama --calibration tests/data/gsm8k/test.jsonl.gz \\
        --n_calibration 20 --output_dir outputs/toy/bi_profile

Writes ``bi_profile.json`` (``cosine`` and ``block_influence`` = 1 - cosine, per layer) and a manifest; the
figure is drawn by ``analysis.figures.figure_bi_profile``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.calibration import CalibrationConfig, calibration_texts
from infra.config import ConfigError, parse_cli, report_error
from infra.files import OutputBusyError, atomic_write_json, output_lock
from infra.layout import BI_PROFILE_RESULT
from infra.manifest import Manifest
from infra.progress import progress as progress_bar


def layer_envoys(wrapped: Any, model: Any) -> list[Any]:
    """nnsight envoys of the decoder blocks, found by module identity (no architecture names)."""
    from infra.modeling import decoder_layers

    layers = decoder_layers(model)
    path = next(name for name, module in model.named_modules() if module is layers)
    envoy = wrapped
    for part in path.split("."):
        envoy = getattr(envoy, part)
    return [envoy[i] for i in range(len(layers))]


def cosine_profile(
    model: Any, tokenizer: Any, texts: list[str], *, batch_size: int = 1, max_length: int = 2048
) -> list[float]:
    """Mean over texts of the mean over (unpadded) tokens of cos(input, output), per layer."""
    import torch
    from nnsight import TransformersModel

    wrapped = TransformersModel(model, task="text-generation", tokenizer=tokenizer)
    envoys = layer_envoys(wrapped, model)
    sums = torch.zeros(len(envoys), dtype=torch.float64)
    for start in progress_bar(range(0, len(texts), batch_size), desc="cosine profile"):
        batch = texts[start : start + batch_size]
        encoded = tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
        encoded = encoded.to(model.device)
        saved: list = []  # filled inside the trace (nnsight runs the block's body itself)
        with torch.no_grad(), wrapped.trace(dict(encoded)):
            for envoy in envoys:
                entering = envoy.input.save()
                leaving = envoy.output
                saved.append((entering, (leaving[0] if isinstance(leaving, tuple) else leaving).save()))
        mask = encoded["attention_mask"].to(torch.float64)
        for index, (entering, leaving) in enumerate(saved):
            cosine = torch.nn.functional.cosine_similarity(entering.float(), leaving.float(), dim=-1).double()
            per_text = (cosine * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
            sums[index] += per_text.sum().cpu()
    return [float(value) for value in sums / len(texts)]


@dataclass
class ProfileArgs:
    model: str
    output_dir: str
    adapter: str | None = None
    calibration: str = "openai/gsm8k"
    hub_config: str = "main"
    split: str = "test"
    n_calibration: int = 100
    template: str = CalibrationConfig.template
    max_length: int = 2048
    batch_size: int = 1
    dtype: str = "auto"
    device: str = "auto"


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(ProfileArgs, argv, doc=__doc__, gpu_stage=True)
    calibration = CalibrationConfig(
        source=args.calibration,
        hub_config=args.hub_config,
        split=args.split,
        template=args.template,
        count=args.n_calibration,
        max_length=args.max_length,
    )
    output_dir = Path(args.output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with output_lock(output_dir / ".lock", output_dir):
            return _profile(args, calibration, output_dir)
    except (ConfigError, OSError, OutputBusyError, ValueError) as error:
        return report_error(error)


def _profile(args: ProfileArgs, calibration: CalibrationConfig, output_dir: Path) -> int:
    from infra.modeling import load_model, load_tokenizer

    texts = calibration_texts(calibration)
    model = load_model(
        args.model, adapter=args.adapter, dtype=args.dtype, device=args.device, merge_adapter=True
    )
    tokenizer = load_tokenizer(args.model, padding_side="right")
    cosines = cosine_profile(model, tokenizer, texts, batch_size=args.batch_size, max_length=args.max_length)
    manifest = Manifest("analysis.bi_profile", config=args)
    manifest.add_input("model", args.model)
    manifest.add_input("calibration", args.calibration)
    atomic_write_json(
        output_dir / BI_PROFILE_RESULT,
        {
            "model": args.model,
            "adapter": args.adapter,
            "calibration": calibration.describe(),
            "cosine": cosines,
            "block_influence": [1.0 - c for c in cosines],
        },
    )
    manifest.write(output_dir)
    print(f"[bi_profile] {len(cosines)} layers -> {output_dir / BI_PROFILE_RESULT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
