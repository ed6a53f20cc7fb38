"""The generators really differ: a residual-spectrum fingerprint separates two seeds of one architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from osma_bench.data.mini import generators as gen
from osma_bench.data.mini.build import SCALES
from osma_bench.data.mini.sources import load_domain


def residual_spectrum(images: np.ndarray) -> np.ndarray:
    """Per image: log magnitude spectrum of the grey image minus its 3x3 local mean (a noise residual)."""
    grey = images.astype(np.float64).mean(axis=3)
    residual = grey - uniform_filter(grey, size=(1, 3, 3), mode="reflect")
    return np.log(np.abs(np.fft.fft2(residual)) + 1e-3).reshape(len(images), -1)


def nearest_centroid_accuracy(a: np.ndarray, b: np.ndarray) -> float:
    """Fit class means on the first half of each set, classify the second halves."""
    ha, hb = len(a) // 2, len(b) // 2
    ca, cb = a[:ha].mean(0), b[:hb].mean(0)
    test = np.concatenate([a[ha:], b[hb:]])
    truth = np.r_[np.zeros(len(a) - ha), np.ones(len(b) - hb)]
    pred = (((test - cb) ** 2).sum(1) < ((test - ca) ** 2).sum(1)).astype(float)
    return float((pred == truth).mean())


@pytest.fixture(scope="module")
def two_seeds():
    """Seeds 0 and 1 of one architecture and domain, trained with the full-scale budget."""
    budget = SCALES["full"].budget
    images = load_domain("portraits")
    with gen.deterministic_torch(1):
        pre = gen.pretrain_architecture("nearest", images, 16, budget, seed=7)
        out = []
        for seed in (0, 1):
            trained = gen.finetune_generator("nearest", pre.state, images, 16, budget, seed=gen.derive_seed(7, seed))
            # The same input patches for both seeds: only the models differ.
            out.append(gen.generate("nearest", trained.state, images, 200, 32, budget, seed=123))
    return out


def test_fingerprint_separates_two_seeds_above_chance(two_seeds):
    a, b = (residual_spectrum(x) for x in two_seeds)
    assert nearest_centroid_accuracy(a, b) >= 0.7


def test_statistic_is_at_chance_for_one_model_against_itself(two_seeds):
    a = residual_spectrum(two_seeds[0])
    rng = np.random.default_rng(0)
    a = a[rng.permutation(len(a))]
    assert nearest_centroid_accuracy(a[:100], a[100:]) <= 0.65


def test_architectures_keep_the_image_size_and_range():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for family in gen.ARCHITECTURES:
        y = gen.AutoencodingGenerator(family, width=8, latent=4)(x)
        assert y.shape == x.shape and float(y.abs().max()) <= 1.0
