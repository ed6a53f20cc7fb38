"""Winner-take-all (WTA) hashing and hash distances in bounded memory (Girish et al., ICCV 2021).

Yagnik et al.'s WTA hash, as Girish et al. use it for open-world GAN attribution: for each of
``N`` random permutations of the feature dimensions, look at the first ``window`` permuted
entries and record which of them is largest (a code in ``0 .. window-1``). Two vectors' hash
distance is the number of permutations whose codes differ, an integer in ``[0, N]``. The
official code one-hot encodes the codes (``N * window`` columns) and computes
``N - onehot(a) . onehot(b)``; this module computes the same numbers.

Memory: pairwise distances between two sets of ``n`` and ``m`` vectors would need ``n * m``
entries (the official code builds the whole matrix per class). Here

- :func:`pairwise_hash_distances` fills the matrix block by block (for callers that want it),
- :func:`mean_hash_distance` needs no pairwise matrix at all: the mean distance of ``a`` to a set
  ``B`` is ``N - onehot(a) . mean(onehot(B))``, exact, O(n + m) memory,
- :func:`hash_distance_quantile` streams blocks of pairwise distances into an integer histogram
  (distances take only ``N + 1`` values), so the quantile is exact in O(block^2 + N) memory.

Everything is torch and runs on the tensors' device. Permutations come from a seeded generator.
"""

from __future__ import annotations

import torch

#: Rows per block of pairwise distance computations (a block is at most BLOCK x BLOCK entries).
DEFAULT_BLOCK = 1024


def wta_permutations(num_hashes: int, dim: int, window: int, seed: int) -> torch.Tensor:
    """The first ``window`` indices of ``num_hashes`` random permutations of ``range(dim)``.

    Only those entries matter for a WTA code, so the rest of each permutation is not kept.
    Returns int64 (num_hashes, window); the same seed gives the same permutations.
    """
    if not 2 <= window <= dim:
        raise ValueError(f"WTA window must be in [2, {dim}], got {window}")
    if num_hashes < 1:
        raise ValueError(f"num_hashes must be positive, got {num_hashes}")
    gen = torch.Generator().manual_seed(int(seed))
    keys = torch.rand(num_hashes, dim, generator=gen)
    return keys.argsort(dim=1)[:, :window].contiguous()


def wta_codes(x: torch.Tensor, perms: torch.Tensor, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """WTA codes of the rows of ``x`` (n, D): uint8 (n, num_hashes), the argmax within each window.

    Ties go to the first entry of the window (as ``torch.argmax`` does in the official code).
    """
    perms = perms.to(x.device)
    out = torch.empty(x.shape[0], perms.shape[0], dtype=torch.uint8, device=x.device)
    for start in range(0, x.shape[0], block):
        chunk = x[start : start + block]
        out[start : start + block] = chunk[:, perms].argmax(dim=2).to(torch.uint8)
    return out


def one_hot_codes(codes: torch.Tensor, window: int) -> torch.Tensor:
    """One-hot encoding of WTA codes: float32 (n, num_hashes * window)."""
    n, num_hashes = codes.shape
    hot = torch.zeros(n, num_hashes, window, dtype=torch.float32, device=codes.device)
    hot.scatter_(2, codes.long().unsqueeze(2), 1.0)
    return hot.reshape(n, num_hashes * window)


def _block_distances(a_hot: torch.Tensor, b_hot: torch.Tensor, num_hashes: int) -> torch.Tensor:
    """Integer hash distances between two one-hot blocks (exact: entries are small integers)."""
    return (num_hashes - a_hot @ b_hot.T).round().to(torch.int64)


def pairwise_hash_distances(
    a_codes: torch.Tensor, b_codes: torch.Tensor, window: int, block: int = DEFAULT_BLOCK
) -> torch.Tensor:
    """All hash distances between rows of ``a_codes`` and ``b_codes``: int64 (n, m), blockwise.

    Only the result is O(n * m); each working block is at most ``block`` rows of either side.
    """
    num_hashes = a_codes.shape[1]
    out = torch.empty(a_codes.shape[0], b_codes.shape[0], dtype=torch.int64, device=a_codes.device)
    for i in range(0, a_codes.shape[0], block):
        a_hot = one_hot_codes(a_codes[i : i + block], window)
        for j in range(0, b_codes.shape[0], block):
            out[i : i + block, j : j + block] = _block_distances(
                a_hot, one_hot_codes(b_codes[j : j + block], window), num_hashes
            )
    return out


def mean_code_profile(codes: torch.Tensor, window: int, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """Mean one-hot code of a set (float64, num_hashes * window): all :func:`mean_hash_distance` needs."""
    total = torch.zeros(codes.shape[1] * window, dtype=torch.float64, device=codes.device)
    for start in range(0, codes.shape[0], block):
        total += one_hot_codes(codes[start : start + block], window).sum(dim=0, dtype=torch.float64)
    return total / max(codes.shape[0], 1)


def mean_hash_distance(
    codes: torch.Tensor, profile: torch.Tensor, window: int, block: int = DEFAULT_BLOCK
) -> torch.Tensor:
    """Mean hash distance (float64, n) of each row of ``codes`` to the set summarised by ``profile``.

    ``profile`` is :func:`mean_code_profile` of the reference set; the result equals averaging
    :func:`pairwise_hash_distances` over the reference set, without building it.
    """
    num_hashes = codes.shape[1]
    out = torch.empty(codes.shape[0], dtype=torch.float64, device=codes.device)
    for start in range(0, codes.shape[0], block):
        hot = one_hot_codes(codes[start : start + block], window).to(torch.float64)
        out[start : start + block] = num_hashes - hot @ profile.to(codes.device)
    return out


def hash_distance_histogram(codes: torch.Tensor, window: int, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """Counts of every distance value 0..num_hashes over all ordered pairs of rows (self-pairs included).

    Streams ``block x block`` tiles, so memory stays bounded however many rows there are.
    """
    num_hashes = codes.shape[1]
    counts = torch.zeros(num_hashes + 1, dtype=torch.int64, device=codes.device)
    for i in range(0, codes.shape[0], block):
        a_hot = one_hot_codes(codes[i : i + block], window)
        for j in range(0, codes.shape[0], block):
            dist = _block_distances(a_hot, one_hot_codes(codes[j : j + block], window), num_hashes)
            counts += torch.bincount(dist.reshape(-1), minlength=num_hashes + 1)
    return counts


def quantile_from_histogram(counts: torch.Tensor, q: float) -> int:
    """The official code's quantile of the values a histogram counts.

    Girish et al. take the ``m``-th largest value with ``m = max(1, int(L * (1 - q)))`` over all
    ``L`` pairwise distances (``torch.topk(...)[-1]``); this is that value, read off the counts.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    total = int(counts.sum())
    if total == 0:
        raise ValueError("quantile of an empty set of distances")
    m = max(1, int(total * (1.0 - q)))
    from_top = torch.flip(counts, dims=[0]).cumsum(0)
    position = int(torch.nonzero(from_top >= m)[0])
    return counts.shape[0] - 1 - position


def hash_distance_quantile(codes: torch.Tensor, q: float, window: int, block: int = DEFAULT_BLOCK) -> int:
    """Quantile ``q`` of the pairwise hash distances within a set of codes, in bounded memory."""
    return quantile_from_histogram(hash_distance_histogram(codes, window, block), q)
