"""Comparisons for the report: rank agreement between two method orders, and paired differences
of one method against a reference over matched (split, seed) runs.

Pure functions on plain numbers; the report decides what to compare.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Bootstrap resamples of the paired-difference interval.
BOOTSTRAP_RESAMPLES = 10_000
#: Below this many pairs, an exact two-sided Wilcoxon p-value cannot reach 0.05 (its minimum is
#: 2 / 2^n: 0.0625 at n = 5).
WILCOXON_MIN_PAIRS = 6


@dataclass(frozen=True)
class RankAgreement:
    """Kendall's tau between two orders over the methods both hold (``tau`` NaN below 2 methods)."""

    tau: float
    methods: tuple[str, ...]

    @property
    def n(self) -> int:
        return len(self.methods)


def order_by(scores: Mapping[str, float | None], higher_is_better: bool = True) -> list[str]:
    """Methods best-first by ``scores`` (missing or NaN scores left out; ties by name)."""
    usable = {m: float(v) for m, v in scores.items() if v is not None and math.isfinite(float(v))}
    sign = -1.0 if higher_is_better else 1.0
    return sorted(usable, key=lambda m: (sign * usable[m], m))


def kendall_tau(order_a: Sequence[str], order_b: Sequence[str]) -> RankAgreement:
    """Kendall's tau of two best-first orders, over the methods both contain.

    ``(concordant - discordant) / (n (n - 1) / 2)`` over every pair of common methods: 1 for the same
    order, -1 for the reverse. Orders are strict (no ties); a method listed twice is an error.
    """
    for name, order in (("order_a", order_a), ("order_b", order_b)):
        if len(set(order)) != len(order):
            raise ValueError(f"{name} lists a method twice: {list(order)}")
    common = [m for m in order_a if m in set(order_b)]
    n = len(common)
    if n < 2:
        return RankAgreement(float("nan"), tuple(common))
    pos_a = {m: i for i, m in enumerate(order_a)}
    pos_b = {m: i for i, m in enumerate(order_b)}
    score = 0
    for i in range(n):
        for j in range(i + 1, n):
            x, y = common[i], common[j]
            score += 1 if (pos_a[x] - pos_a[y]) * (pos_b[x] - pos_b[y]) > 0 else -1
    return RankAgreement(score / (n * (n - 1) / 2), tuple(common))


@dataclass(frozen=True)
class PairedDifference:
    """``method - reference`` over matched (split, seed) runs.

    ``mean`` of the differences; ``low``/``high``: percentile bootstrap interval (None below 2
    pairs); ``p_value``: two-sided Wilcoxon signed-rank (None without pairs; 1.0 when every
    difference is zero); ``note`` says when a figure cannot carry weight.
    """

    method: str
    reference: str
    n: int
    mean: float | None
    low: float | None
    high: float | None
    p_value: float | None
    pairs: tuple[tuple[int, int], ...]
    note: str = ""


def matched_differences(values: Mapping[tuple[int, int], float | None],
                        reference: Mapping[tuple[int, int], float | None]) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The (split, seed) keys both hold with finite values, sorted, and ``values - reference`` on them."""
    keys = sorted(k for k in set(values) & set(reference)
                  if values[k] is not None and reference[k] is not None
                  and math.isfinite(float(values[k])) and math.isfinite(float(reference[k])))
    return keys, np.array([float(values[k]) - float(reference[k]) for k in keys], dtype=np.float64)


def bootstrap_interval(diffs: np.ndarray, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (seeded: the same input, the same interval)."""
    if len(diffs) == 0:
        raise ValueError("no differences to resample")
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(resamples, len(diffs)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def wilcoxon_p(diffs: np.ndarray) -> tuple[float | None, str]:
    """Two-sided Wilcoxon signed-rank p-value of ``diffs`` and a note (zero differences are dropped,
    scipy's default; all zero: p = 1)."""
    from scipy.stats import wilcoxon

    if len(diffs) == 0:
        return None, "no matched runs"
    nonzero = int(np.count_nonzero(diffs))
    if nonzero == 0:
        return 1.0, "every difference is zero"
    p = float(wilcoxon(diffs).pvalue)
    if nonzero < WILCOXON_MIN_PAIRS:
        return p, (f"{nonzero} non-zero pair(s): the smallest possible two-sided p is "
                   f"{2.0 / 2 ** nonzero:.4g}")
    return p, ""


def paired_difference(method: str, values: Mapping[tuple[int, int], float | None], reference: str,
                      reference_values: Mapping[tuple[int, int], float | None], level: float = 0.95,
                      resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> PairedDifference:
    """``method - reference`` over the (split, seed) runs both have (see :class:`PairedDifference`)."""
    keys, diffs = matched_differences(values, reference_values)
    if not keys:
        return PairedDifference(method, reference, 0, None, None, None, None, (), "no matched runs")
    low = high = None
    note = ""
    if len(diffs) >= 2:
        low, high = bootstrap_interval(diffs, level, resamples, seed)
    else:
        note = "one matched run: no interval"
    p, p_note = wilcoxon_p(diffs)
    note = "; ".join(n for n in (note, p_note) if n)
    return PairedDifference(method, reference, len(keys), float(diffs.mean()), low, high, p, tuple(keys), note)


def paired_differences(runs: Mapping[str, Mapping[tuple[int, int], float | None]], reference: str,
                       level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
                       ) -> list[PairedDifference]:
    """:func:`paired_difference` of every method of ``runs`` except ``reference``, in ``runs``' order."""
    if reference not in runs:
        raise ValueError(f"reference {reference!r} has no runs")
    return [paired_difference(m, v, reference, runs[reference], level, resamples, seed)
            for m, v in runs.items() if m != reference]
