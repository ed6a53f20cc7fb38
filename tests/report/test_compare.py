"""Rank agreement and paired differences, on hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from osma_bench.report.compare import (
    bootstrap_interval,
    kendall_tau,
    matched_differences,
    order_by,
    paired_difference,
    paired_differences,
    wilcoxon_p,
)


def test_kendall_tau_by_hand():
    # pairs AB and AC agree, BC is swapped: (2 - 1) / 3
    assert kendall_tau(["A", "B", "C"], ["A", "C", "B"]).tau == pytest.approx(1 / 3)
    assert kendall_tau(["A", "B", "C"], ["C", "B", "A"]).tau == -1.0
    same = kendall_tau(["A", "X", "B", "C"], ["A", "B", "Y", "C"])  # X and Y are in one order only
    assert same.tau == 1.0 and same.methods == ("A", "B", "C") and same.n == 3
    assert math.isnan(kendall_tau(["A", "B"], ["B", "Z"]).tau)
    with pytest.raises(ValueError, match="twice"):
        kendall_tau(["A", "A"], ["A"])


def test_order_by_scores():
    assert order_by({"a": 0.5, "b": 0.9, "c": None, "d": float("nan"), "e": 0.5}) == ["b", "a", "e"]
    assert order_by({"a": 3.0, "b": 1.0}, higher_is_better=False) == ["b", "a"]


def test_matched_differences_use_common_finite_runs_only():
    method = {(1, 0): 0.9, (1, 1): 0.8, (2, 0): None, (3, 0): 0.7}
    base = {(1, 0): 0.85, (1, 1): 0.9, (2, 0): 0.5, (4, 0): 0.1}
    keys, diffs = matched_differences(method, base)
    assert keys == [(1, 0), (1, 1)] and np.allclose(diffs, [0.05, -0.1])


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    d = np.array([1.0, 2.0, 3.0])
    low, high = bootstrap_interval(d, seed=0)
    assert 1.0 <= low < 2.0 < high <= 3.0
    assert bootstrap_interval(d, seed=0) == (low, high)  # seeded
    assert bootstrap_interval(np.array([0.5, 0.5]), seed=0) == (0.5, 0.5)


def test_wilcoxon_by_hand():
    # |d| ranks 1..6; T- = 2 + 5 = 7; subsets of {1..6} with sum <= 7: 18 of 64; p = 2 x 18 / 64
    assert wilcoxon_p(np.array([1.0, -2.0, 3.0, 4.0, -5.0, 6.0]))[0] == pytest.approx(36 / 64)
    assert wilcoxon_p(np.arange(1.0, 7.0)) == (pytest.approx(2 / 64), "")
    p, note = wilcoxon_p(np.arange(1.0, 6.0))  # n = 5: the exact p cannot go below 2 / 32
    assert p == pytest.approx(2 / 32) and "0.0625" in note
    assert wilcoxon_p(np.zeros(4)) == (1.0, "every difference is zero")
    assert wilcoxon_p(np.array([])) == (None, "no matched runs")


def test_paired_difference_by_hand():
    pose = {(s, k): 0.80 + 0.01 * s for s in (1, 2, 3) for k in (0, 1)}
    base = {key: value - 0.02 for key, value in pose.items()}
    base[(3, 1)] = None  # not matched
    result = paired_difference("pose", pose, "base", base)
    assert result.n == 5 and result.mean == pytest.approx(0.02)
    assert result.low == pytest.approx(0.02) and result.high == pytest.approx(0.02)
    assert result.p_value == pytest.approx(2 / 32) and "0.0625" in result.note
    single = paired_difference("a", {(1, 0): 0.5}, "b", {(1, 0): 0.4})
    assert single.n == 1 and single.low is None and "no interval" in single.note
    none = paired_difference("a", {(1, 0): 0.5}, "b", {(2, 0): 0.4})
    assert none.n == 0 and none.mean is None and none.p_value is None
    table = paired_differences({"base": base, "pose": pose, "x": {(1, 0): 0.1}}, "base")
    assert [r.method for r in table] == ["pose", "x"] and table[1].mean == pytest.approx(0.1 - 0.79)
    with pytest.raises(ValueError, match="no runs"):
        paired_differences({"pose": pose}, "base")
