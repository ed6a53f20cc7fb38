"""Weibull tail fitting as libMR's ``FitHigh`` does it, in float64 with scipy (for OpenMax).

libMR (Scheirer et al., "Meta-Recognition", TPAMI 2011; the library OpenMax ships) fits the
largest ``tail_size`` values of a sample: it takes the smallest of them, ``small_score``, shifts the
tail so that value lands on ``translate_amount`` (10,000), and fits a two-parameter Weibull (location
fixed at 0) by maximum likelihood. The w-score of a new value ``x`` is the Weibull CDF at
``x + translate_amount - small_score``.

The maximum-likelihood fit here solves the shape equation of the profile likelihood exactly
(root finding with :func:`scipy.optimize.brentq`, relative tolerance 1e-14), in the log domain so the
large shapes that a tail shifted to 10,000 produces (often 10^3 to 10^5) neither overflow nor lose
precision. libMR solves the same equation (a MATLAB ``wblfit`` port) to its own tolerance; issue 15
compared the two (libMR's FitHigh) to 2e-6. ``scipy.stats.weibull_min.fit(shifted, floc=0)`` does NOT
agree: its generic optimiser stops far from the maximum on tails shifted to 10,000 (w-scores off by
up to 0.41), which is why the shape equation is solved here directly.

A degenerate tail (one value, or all values equal) has no finite maximum-likelihood shape; it is
stored with ``shape = inf`` and its CDF is the step 0 below the shifted value, 1 at and above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

#: libMR's default translation of the tail (``MetaRecognition(..., translate_amount = 10000)``).
TRANSLATE_AMOUNT = 10000.0


def weibull_mle(data: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``(shape, scale)`` of a two-parameter Weibull (location 0) for positive data.

    Solves ``sum(w_i ln x_i) / sum(w_i) - 1 / k - mean(ln x) = 0`` with ``w_i = x_i ** k`` for the
    shape ``k`` (the left side increases with ``k``), then ``scale = mean(x ** k) ** (1 / k)``.
    Raises ValueError for non-positive data or fewer than two distinct values.
    """
    x = np.asarray(data, dtype=np.float64).ravel()
    if x.size < 2 or not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError("weibull_mle needs at least two positive, finite values")
    x_ref = float(x.max())
    # y = ln(x / x_ref), computed with log1p so values that differ in the 5th digit keep their precision
    y = np.log1p((x - x_ref) / x_ref)
    y_mean = float(y.mean())
    spread = float(y.max() - y.min())
    if spread <= 0.0:
        raise ValueError("weibull_mle needs at least two distinct values")

    def shape_equation(k: float) -> float:
        log_w = k * (y - y.max())
        w = np.exp(log_w - logsumexp(log_w))
        return float(np.dot(w, y)) - 1.0 / k - y_mean

    # g(k) < 0 for small k (the -1/k term dominates); g(k) -> max(y) - mean(y) > 0 as k grows.
    low = 1e-3 / spread
    while shape_equation(low) > 0:
        low /= 10.0
    high = 1.0 / spread
    while shape_equation(high) < 0:
        high *= 2.0
    shape = brentq(shape_equation, low, high, xtol=1e-300, rtol=1e-14, maxiter=500)
    log_mean_xk = float(logsumexp(shape * y) - math.log(x.size))
    scale = x_ref * math.exp(log_mean_xk / shape)
    return float(shape), float(scale)


@dataclass(frozen=True)
class WeibullTail:
    """One fitted tail: ``shape``, ``scale`` of the shifted data, and the shift's ``small_score``."""

    shape: float
    scale: float
    small_score: float
    translate_amount: float = TRANSLATE_AMOUNT

    def w_score(self, x: np.ndarray | float) -> np.ndarray:
        """libMR's ``W_score`` / ``CDF`` for FitHigh: the Weibull CDF of the shifted value (float64)."""
        t = np.asarray(x, dtype=np.float64) + self.translate_amount - self.small_score
        if math.isinf(self.shape):
            return np.where(t >= self.scale, 1.0, 0.0)
        out = np.zeros_like(t)
        positive = t > 0
        # (t / scale) ** shape = exp(shape * log1p((t - scale) / scale)): exact for t close to scale
        log_ratio = np.log1p((t[positive] - self.scale) / self.scale)
        with np.errstate(over="ignore"):  # exp overflowing to inf gives a CDF of exactly 1
            out[positive] = -np.expm1(-np.exp(self.shape * log_ratio))
        return out

    def as_array(self) -> np.ndarray:
        """``[shape, scale, small_score, translate_amount]`` (float64), for checkpoints."""
        return np.array([self.shape, self.scale, self.small_score, self.translate_amount], dtype=np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray) -> WeibullTail:
        """Inverse of :meth:`as_array`."""
        shape, scale, small, translate = (float(v) for v in np.asarray(values, dtype=np.float64))
        return cls(shape, scale, small, translate)


def fit_high(data: np.ndarray, tail_size: int, translate_amount: float = TRANSLATE_AMOUNT) -> WeibullTail:
    """libMR ``FitHigh``: fit the ``tail_size`` largest values (all of them when fewer).

    The tail is shifted so its smallest value maps to ``translate_amount`` and a Weibull with
    location 0 is fitted by maximum likelihood.
    """
    values = np.sort(np.asarray(data, dtype=np.float64).ravel())[::-1]
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("fit_high needs at least one finite value")
    if tail_size < 1:
        raise ValueError(f"tail_size must be at least 1, got {tail_size}")
    tail = values[: min(tail_size, values.size)]
    small_score = float(tail[-1])
    shifted = tail + translate_amount - small_score
    if tail.size < 2 or float(tail[0]) == small_score:
        return WeibullTail(math.inf, float(translate_amount), small_score, float(translate_amount))
    shape, scale = weibull_mle(shifted)
    return WeibullTail(shape, scale, small_score, float(translate_amount))
