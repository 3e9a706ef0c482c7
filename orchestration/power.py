"""How many items each finding needs: a power analysis from the results of seeds already run.

    python -m orchestration.power --results outputs/real/smollm2-135m-instruct,outputs/real-seed1/smollm2-135m-instruct,outputs/real-seed2/smollm2-135m-instruct \
        --experiments configs/experiments/real.yaml --study real

For each finding of ``analysis.findings``, from each seed's estimate and its bootstrap 95% interval over items:
the standard error (interval width / 3.92), the per-item standard deviation it implies at the items the seed
used (SE x sqrt(items)), and the items a paired comparison needs for 90% power at the 5% level (two-sided) to
find the effect seen (the seeds' mean estimate): ((1.96 + 1.28) x SD / effect)^2. Items are those per task for
the generative findings, the probe's for the probe's (the critical layer's: the items it is measured on). With
``--study``, the items the study's profile uses beside them. Nothing is fitted to a seed: the table is what the
seeds' results say.
"""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any

from infra.config import parse_cli, run_cli
from infra.files import load_jsonl, read_json
from infra.layout import ResultsLayout
from orchestration.study import load_study

Z_ALPHA, Z_POWER = 1.959964, 1.281552  # 5% two-sided, 90% power
SHORT = ("(1) classification - generative retention", "(2) SGR - SFT", "(3) SGR - pruned", "(4) probe drop, pruned",
         "(5) rep-4 rise, pruned (points)", "(6) critical layer: probe drop")  # fmt: skip


@dataclass
class PowerArgs:
    results: list[str] = field(
        metadata={"help": "results trees of the seeds (infra/layout.py), findings built"}
    )
    experiments: str = field(default="configs/experiments/real.yaml", metadata={"help": "their grid"})
    study: str | None = field(default=None, metadata={"help": "a profile whose items are shown beside"})


def items_used(layout: ResultsLayout, finding: int) -> int | None:
    """The items one comparison of a finding rests on, in one results tree."""
    if finding in (3,):  # the probe's, the unpruned model's against the pruned one's
        path = layout.probe("unablated") if layout.probe("unablated").is_file() else layout.probe("base")
        pruned = [
            p
            for p in (layout.root / "probe").glob("*/arithmetic_probe.json")
            if p.parent.name not in ("base", "critical", "unablated")
        ]
        counts = [read_json(p)["n_items"] for p in pruned]
        return min([read_json(path)["n_items"], *counts]) if path.is_file() and counts else None
    if finding == 5:
        critical = layout.probe("critical")
        if critical.is_file():
            return read_json(critical)["n_items"]
        base = layout.probe("base")
        return read_json(base)["n_items"] // 2 if base.is_file() else None  # the odd-numbered half
    files = sorted(layout.base_eval.glob("*.jsonl"))
    return min(len(load_jsonl(path)) for path in files) if files else None


def tokens_per_item(layout: ResultsLayout) -> float | None:
    """Generated tokens per answer of the unpruned model's evaluation."""
    counts = [r.get("num_tokens", 0) for path in layout.base_eval.glob("*.jsonl") for r in load_jsonl(path)]
    return statistics.mean(counts) if counts else None


@dataclass
class Row:
    finding: str
    estimates: list[float]
    sds: list[float]
    items: list[int]

    @property
    def effect(self) -> float:
        return statistics.mean(self.estimates)

    @property
    def sd(self) -> float:
        return statistics.mean(self.sds)

    def needed(self, worst: bool = False) -> int | None:
        """Items for 90% power: at the seeds' mean effect and SD, or (``worst``) at the smallest effect and the
        largest SD any seed showed."""
        effect = min(self.estimates) if worst else self.effect
        sd = max(self.sds) if worst else self.sd
        if effect <= 0:
            return None  # the effect the finding claims was not seen: no sample size finds it
        return math.ceil(((Z_ALPHA + Z_POWER) * sd / effect) ** 2)

    def power(self, items: int) -> float | None:
        """The chance that ``items`` items find the seeds' mean effect at their mean SD (two-sided 5%)."""
        if self.effect <= 0 or self.sd == 0:
            return None
        return statistics.NormalDist().cdf(self.effect * math.sqrt(items) / self.sd - Z_ALPHA)


def analyse(results: list[str]) -> list[Row]:
    rows = [Row(name, [], [], []) for name in SHORT]
    for tree in results:
        layout = ResultsLayout(tree)
        for index, item in enumerate(read_json(layout.root / "artifacts" / "findings.json")):
            n = items_used(layout, index)
            if item["estimate"] is None or item["ci"] is None or not n:
                continue
            low, high = item["ci"]
            se = (high - low) / (2 * Z_ALPHA)
            rows[index].estimates.append(item["estimate"])
            rows[index].sds.append(se * math.sqrt(n))
            rows[index].items.append(n)
    return rows


def render(rows: list[Row], planned: dict[int, int] | None = None) -> str:
    head = (
        "| finding | effect seen (each seed) | per-item SD | items used | items needed (90% power, 5%): at the "
        "mean effect / at the smallest effect and largest SD |"
    )
    lines = [
        head + (" items planned (power at the mean effect) |" if planned else ""),
        "| --- " * (5 + bool(planned)) + "|",
    ]
    for index, row in enumerate(rows):
        if not row.estimates:
            continue
        seeds = ", ".join(f"{e:+.3f}" for e in row.estimates)
        needed, worst = row.needed(), row.needed(worst=True)
        verdict = (
            "none finds it (the effect is against the claim)"
            if needed is None
            else f"{needed} / {worst if worst is not None else 'none (a seed against the claim)'}"
        )
        items = "/".join(str(n) for n in sorted(set(row.items)))
        cells = [row.finding, f"{row.effect:+.3f} ({seeds})", f"{row.sd:.3f}", items, verdict]
        if planned:
            n = planned.get(index)
            power = row.power(n) if n else None
            cells.append(f"{n} ({power:.0%})" if power is not None else str(n or ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def planned_items(profile: str, experiments: Any) -> dict[int, int]:
    """The items each finding rests on under a study profile."""
    study = load_study(profile, {})
    probe = study.figure_7_probe_items or experiments.probe_items.get("figure_7") or study.probe_items or 200
    critical = study.critical_probe_items or (study.probe_items or 200) // 2
    items = study.items or 1000
    return {0: items, 1: items, 2: items, 3: probe, 4: items, 5: critical}


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(PowerArgs, argv, doc=__doc__)

    def run(a: PowerArgs) -> None:
        from infra.experiments import load_experiments

        rows = analyse(a.results)
        planned = planned_items(a.study, load_experiments(a.experiments)) if a.study else None
        print(render(rows, planned))
        tokens = [t for t in (tokens_per_item(ResultsLayout(tree)) for tree in a.results) if t]
        if tokens:
            print(f"\ngenerated tokens per answer of the unpruned model: {statistics.mean(tokens):.1f}")

    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
