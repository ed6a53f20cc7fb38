"""WTA hashing (Girish et al.): codes by hand, distance properties, blocked = unblocked, quantiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.wta_hash import (
    hash_distance_histogram,
    hash_distance_quantile,
    mean_code_profile,
    mean_hash_distance,
    pairwise_hash_distances,
    quantile_from_histogram,
    wta_codes,
    wta_permutations,
)


def _reference_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plain numpy: the number of hashes whose codes differ."""
    return (a[:, None, :] != b[None, :, :]).sum(axis=2)


def test_codes_by_hand():
    x = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    perms = torch.tensor([[0, 1], [1, 2], [2, 0]])
    # row 0: max(3,1) -> 0; max(1,2) -> 1; max(2,3) -> 1.  row 1: max(0,5) -> 1; max(5,4) -> 0; max(4,0) -> 0
    assert wta_codes(x, perms).tolist() == [[0, 1, 1], [1, 0, 0]]


def test_permutations_seeded_and_distinct():
    a = wta_permutations(50, 16, 3, seed=7)
    assert a.shape == (50, 3) and torch.equal(a, wta_permutations(50, 16, 3, seed=7))
    assert not torch.equal(a, wta_permutations(50, 16, 3, seed=8))
    assert all(len(set(row.tolist())) == 3 for row in a) and int(a.max()) < 16
    with pytest.raises(ValueError):
        wta_permutations(4, 3, 5, seed=0)


def test_distance_properties():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(9, 12, generator=gen)
    perms = wta_permutations(64, 12, 2, seed=1)
    codes = wta_codes(x, perms)
    d = pairwise_hash_distances(codes, codes, window=2)
    assert torch.all(d.diagonal() == 0) and torch.equal(d, d.T)
    assert int(d.min()) >= 0 and int(d.max()) <= 64
    assert np.array_equal(d.numpy(), _reference_distances(codes.numpy(), codes.numpy()))
    # rank-based: a positive scaling plus a shift leaves every code unchanged
    assert torch.equal(wta_codes(3.0 * x + 5.0, perms), codes)
    # a vector's distance grows as it moves away: identical < small noise < unrelated, on average
    near = wta_codes(x + 0.05 * torch.randn(x.shape, generator=gen), perms)
    far = wta_codes(torch.randn(x.shape, generator=gen), perms)
    d_near = pairwise_hash_distances(codes, near, 2).diagonal().float().mean()
    d_far = pairwise_hash_distances(codes, far, 2).diagonal().float().mean()
    assert 0 < d_near < d_far


@pytest.mark.parametrize("window", [2, 4])
def test_blocked_equals_unblocked(window):
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(23, 10, generator=gen), torch.randn(17, 10, generator=gen)
    perms = wta_permutations(40, 10, window, seed=3)
    ca, cb = wta_codes(a, perms, block=5), wta_codes(b, perms)
    assert torch.equal(ca, wta_codes(a, perms))
    full = pairwise_hash_distances(ca, cb, window, block=10_000)
    assert torch.equal(pairwise_hash_distances(ca, cb, window, block=4), full)
    assert np.array_equal(full.numpy(), _reference_distances(ca.numpy(), cb.numpy()))
    mean = mean_hash_distance(ca, mean_code_profile(cb, window, block=3), window, block=6)
    assert torch.allclose(mean, full.double().mean(dim=1))
    hist = hash_distance_histogram(ca, window, block=4)
    whole = pairwise_hash_distances(ca, ca, window, block=10_000)
    assert torch.equal(hist, torch.bincount(whole.reshape(-1), minlength=41)) and int(hist.sum()) == 23 * 23


@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_quantile_matches_official_topk_definition(q):
    gen = torch.Generator().manual_seed(4)
    codes = wta_codes(torch.randn(30, 8, generator=gen), wta_permutations(32, 8, 2, seed=5))
    dist = pairwise_hash_distances(codes, codes, 2).reshape(-1)
    m = max(1, int(dist.numel() * (1 - q)))
    expected = int(torch.topk(dist, m).values[-1])  # the official code's quantile
    assert hash_distance_quantile(codes, q, 2, block=7) == expected


def test_quantile_by_hand():
    counts = torch.tensor([5, 0, 3, 2])  # values 0 x5, 2 x3, 3 x2: L = 10
    assert quantile_from_histogram(counts, 0.9) == 3  # m = 1: the largest
    assert quantile_from_histogram(counts, 0.7) == 2  # m = 3: 3, 3, 2
    assert quantile_from_histogram(counts, 0.0) == 0  # m = 10: the smallest
    with pytest.raises(ValueError):
        quantile_from_histogram(torch.zeros(3, dtype=torch.int64), 0.5)
