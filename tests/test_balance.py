"""The test workers' balance (tests/helpers/balance.py): the longest tests dealt out longest first to the worker
with the least work, each worker's slice starting with them."""

from __future__ import annotations

from dataclasses import dataclass

from tests.helpers.balance import LONG_SECONDS, balanced_order


@dataclass
class Item:
    nodeid: str


def test_long_tests_are_dealt_out_and_each_slice_starts_with_its_own():
    items = [Item(f"t{i}") for i in range(10)]
    durations = {"t1": 300.0, "t4": 200.0, "t7": 150.0, "t8": 60.0, "t0": 1.0}
    ordered = balanced_order(items, 2, durations)
    assert sorted(item.nodeid for item in ordered) == sorted(item.nodeid for item in items)  # nothing lost
    first, second = ordered[:5], ordered[5:]  # the slices the work-stealing scheduler hands two workers
    # 300 -> worker 1; 200 -> worker 2; 150 -> worker 2 (200 < 300); 60 -> worker 1 (360 > 350).
    assert [i.nodeid for i in first[:2]] == ["t1", "t8"] and [i.nodeid for i in second[:2]] == ["t4", "t7"]
    # The short ones keep their collected order after the long ones.
    assert [i.nodeid for i in first[2:] + second[2:]] == ["t0", "t2", "t3", "t5", "t6", "t9"]


def test_one_worker_runs_the_longest_first_and_unknown_tests_count_as_short():
    items = [Item(n) for n in ("a", "b", "c", "d")]
    ordered = balanced_order(items, 1, {"c": LONG_SECONDS, "d": 2 * LONG_SECONDS, "b": LONG_SECONDS - 1})
    assert [i.nodeid for i in ordered] == ["d", "c", "a", "b"]
    assert balanced_order(items, 2, {}) == items
