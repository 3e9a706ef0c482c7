"""The power analysis (orchestration/power.py): the per-item SD each seed's interval implies and the items a
finding needs, checked against the formula worked by hand."""

from __future__ import annotations

import json
import math

from infra.layout import PROBE_RESULT
from orchestration import power


def seed_tree(root, estimates, items=100, probe_items=300, critical_items=300):
    """A results tree with findings.json (each finding's interval +-0.1 around its estimate), a base
    evaluation of ``items`` items, and the probes the probe findings rest on."""
    findings = [{"estimate": e, "ci": [e - 0.1, e + 0.1]} if e is not None else {"estimate": None, "ci": None}
                for e in estimates]  # fmt: skip
    (root / "artifacts").mkdir(parents=True)
    (root / "artifacts" / "findings.json").write_text(json.dumps(findings))
    (root / "base" / "eval").mkdir(parents=True)
    lines = "".join(json.dumps({"num_tokens": 10 + i % 3}) + "\n" for i in range(items))
    (root / "base" / "eval" / "toy_copy.jsonl").write_text(lines)
    for run, n in (("unablated", probe_items), ("bi-25pct", probe_items), ("critical", critical_items)):
        (root / "probe" / run).mkdir(parents=True)
        (root / "probe" / run / PROBE_RESULT).write_text(json.dumps({"n_items": n}))
    return str(root)


def test_items_needed_follow_the_formula(tmp_path):
    trees = [
        seed_tree(tmp_path / "s0", [0.2, -0.5, 0.1, 0.1, 10.0, 0.2]),
        seed_tree(tmp_path / "s1", [0.4, -0.3, 0.1, 0.2, 12.0, None], probe_items=200),
    ]
    rows = power.analyse(trees)
    sd_at = {n: 0.2 / (2 * power.Z_ALPHA) * math.sqrt(n) for n in (100, 200, 300)}
    first = rows[0]
    assert first.estimates == [0.2, 0.4] and first.items == [100, 100]
    assert math.isclose(first.sd, sd_at[100])
    assert first.needed() == math.ceil(((power.Z_ALPHA + power.Z_POWER) * sd_at[100] / 0.3) ** 2) == 31
    assert first.needed(worst=True) == math.ceil(((power.Z_ALPHA + power.Z_POWER) * sd_at[100] / 0.2) ** 2)
    assert rows[1].needed() is None  # an effect against the claim: no sample size finds it
    probe = rows[3]  # (4): the smaller of the unpruned and pruned probes of each seed
    assert probe.items == [300, 200] and math.isclose(probe.sd, (sd_at[300] + sd_at[200]) / 2)
    assert rows[5].estimates == [0.2] and rows[5].items == [300]  # (6): a seed without it is left out
    # At the items needed, the power is at least 90%; one item fewer, below it.
    n = probe.needed()
    assert probe.power(n) >= 0.9 > probe.power(n - 1)
    table = power.render(rows, {0: 60, 3: 300})
    assert "| (1) classification - generative retention | +0.300 (+0.200, +0.400) |" in table
    assert f"| 60 ({first.power(60):.0%}) |" in table
    assert "none finds it (the effect is against the claim)" in table
