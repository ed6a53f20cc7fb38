"""The generators really differ: a residual-spectrum fingerprint separates two seeds of one architecture."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from osma_bench.data.mini import generators as gen
from osma_bench.data.mini.build import SCALES
from osma_bench.data.mini.sources import load_domain


def residual_spectrum(images: np.ndarray) -> np.ndarray:
    """Per image: log magnitude spectrum of its noise residual (each channel minus its 3x3 local
    mean), averaged over the channels: one value per spatial frequency."""
    x = images.astype(np.float64)
    residual = x - uniform_filter(x, size=(1, 3, 3, 1), mode="reflect")
    spectrum = np.log(np.abs(np.fft.fft2(residual, axes=(1, 2))) + 1e-3).mean(axis=3)
    return spectrum.reshape(len(images), -1)


def separability(a: np.ndarray, b: np.ndarray) -> float:
    """5-fold cross-validated accuracy of a strongly regularised logistic regression, ``a`` vs ``b``."""
    x = np.concatenate([a, b])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    return float(cross_val_score(LogisticRegression(C=0.01, max_iter=500), x, y, cv=5).mean())


@pytest.fixture(scope="module")
def two_seeds():
    """Seeds 0 and 1 of one architecture and domain: the full-scale fine-tuning after a shortened pre-training."""
    budget = replace(SCALES["full"].budget, pretrain_steps=100)
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
    assert separability(a, b) >= 0.62


def test_statistic_is_at_chance_for_one_model_against_itself(two_seeds):
    a = residual_spectrum(two_seeds[0])
    rng = np.random.default_rng(0)
    a = a[rng.permutation(len(a))]
    assert separability(a[:100], a[100:]) <= 0.6


def test_architectures_keep_the_image_size_and_range():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for family in gen.ARCHITECTURES:
        y = gen.AutoencodingGenerator(family, width=8, latent=4)(x)
        assert y.shape == x.shape and float(y.detach().abs().max()) <= 1.0
