"""The libMR-FitHigh-equivalent Weibull tail fit (baselines.weibull)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from baselines.weibull import TRANSLATE_AMOUNT, WeibullTail, fit_high, weibull_mle


def test_mle_solves_the_likelihood_equations():
    x = stats.weibull_min.rvs(2.5, scale=3.0, size=200, random_state=1)
    shape, scale = weibull_mle(x)
    # d logL / d shape = 0  and  d logL / d scale = 0
    lx = np.log(x)
    assert np.sum(x**shape * lx) / np.sum(x**shape) - 1 / shape - lx.mean() == pytest.approx(0, abs=1e-12)
    assert scale**shape == pytest.approx(np.mean(x**shape), rel=1e-12)
    ref_shape, _, ref_scale = stats.weibull_min.fit(x, floc=0)
    assert shape == pytest.approx(ref_shape, rel=1e-4) and scale == pytest.approx(ref_scale, rel=1e-4)


def test_hand_made_cdf():
    tail = WeibullTail(shape=2.0, scale=10000.0, small_score=5.0)
    # x = small_score maps onto 10,000 = scale: CDF = 1 - exp(-1)
    assert tail.w_score(5.0) == pytest.approx(1 - math.exp(-1), abs=1e-15)
    median = 10000.0 * math.sqrt(math.log(2)) - 10000.0 + 5.0
    assert tail.w_score(median) == pytest.approx(0.5, abs=1e-12)
    assert tail.w_score(-20000.0) == 0.0  # shifted value below 0


def test_fit_high_takes_the_largest_values_and_shifts_them():
    rng = np.random.default_rng(0)
    data = rng.gamma(2.0, 0.3, size=300)
    tail = fit_high(data, 20)
    top = np.sort(data)[-20:]
    assert tail.small_score == top[0] and tail.translate_amount == TRANSLATE_AMOUNT
    shifted = top + TRANSLATE_AMOUNT - top[0]
    ref_shape, _, ref_scale = stats.weibull_min.fit(shifted, floc=0)
    assert tail.shape == pytest.approx(ref_shape, rel=1e-4) and tail.scale == pytest.approx(ref_scale, rel=1e-8)
    probe = np.linspace(top[0] - 0.5, top[-1] + 0.5, 9)
    expected = stats.weibull_min.cdf(probe + TRANSLATE_AMOUNT - top[0], tail.shape, scale=tail.scale)
    np.testing.assert_allclose(tail.w_score(probe), expected, atol=1e-9)
    assert np.all(np.diff(tail.w_score(probe)) >= 0)
    # the tail does not depend on the order or on values outside it
    assert fit_high(rng.permutation(data), 20) == tail
    assert fit_high(np.concatenate([data, [-5.0, 0.0]]), 20) == tail


def test_shift_invariance_of_the_translated_tail():
    data = np.random.default_rng(1).gamma(3.0, 0.2, size=100)
    a, b = fit_high(data, 10), fit_high(data + 7.25, 10)
    assert a.shape == pytest.approx(b.shape, rel=1e-9)
    probe = np.array([0.1, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(a.w_score(probe), b.w_score(probe + 7.25), atol=1e-9)


def test_degenerate_tails_are_steps_and_roundtrip():
    one = fit_high([3.0, 1.0], 1)
    assert math.isinf(one.shape)
    np.testing.assert_array_equal(one.w_score(np.array([2.9, 3.0, 3.5])), [0.0, 1.0, 1.0])
    tail = fit_high([1.0, 2.0, 4.0], 5)  # fewer values than the tail size: all are used
    assert tail.small_score == 1.0
    assert WeibullTail.from_array(tail.as_array()) == tail
    with pytest.raises(ValueError):
        weibull_mle(np.array([2.0, 2.0]))
    with pytest.raises(ValueError):
        fit_high([], 3)
