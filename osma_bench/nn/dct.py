"""2-D DCT-II as two matrix products with a precomputed basis (exact, fast, differentiable).

POSE feeds its classifier the unnormalised DCT-II of each channel, as torch_dct's
``dct_2d(x, norm=None)`` computes it: ``X[k] = 2 * sum_n x[n] cos(pi k (2n + 1) / (2N))`` along each
axis. For a [-1, 1] image of side N the DC term reaches 4 N^2 (65,536 at 128x128), so callers keep
this transform in float32 under mixed precision. ``norm="ortho"`` gives the orthonormal DCT-II
(used by Frank et al.'s DCT-CNN).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn


@lru_cache(maxsize=16)
def _dct_basis_cpu(n: int, norm: str | None) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    basis = 2.0 * torch.cos(math.pi * k * (2.0 * i + 1.0) / (2.0 * n))
    if norm == "ortho":
        basis[0] *= math.sqrt(1.0 / (4.0 * n))
        basis[1:] *= math.sqrt(1.0 / (2.0 * n))
    elif norm is not None:
        raise ValueError(f"norm must be None or 'ortho', not {norm!r}")
    return basis


def dct_matrix(n: int, norm: str | None = None, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """The (n, n) DCT-II matrix D, so that the 1-D transform of a vector x is D @ x."""
    return _dct_basis_cpu(n, norm).to(dtype=dtype, device=device)


def dct_2d(x: torch.Tensor, norm: str | None = None) -> torch.Tensor:
    """DCT-II over the last two dimensions: D_h X D_w^T (always computed in float32 or wider)."""
    h, w = x.shape[-2], x.shape[-1]
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    dh = dct_matrix(h, norm, dtype=work.dtype, device=x.device)
    dw = dh if w == h else dct_matrix(w, norm, dtype=work.dtype, device=x.device)
    return dh @ work @ dw.T


class DCT2d(nn.Module):
    """Module form of :func:`dct_2d` with the basis stored as a buffer (moves with ``.to``)."""

    def __init__(self, size: int, norm: str | None = None) -> None:
        super().__init__()
        self.size = size
        self.norm = norm
        self.register_buffer("basis", dct_matrix(size, norm), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            return dct_2d(x, self.norm)
        with torch.autocast(device_type=x.device.type, enabled=False):
            work = x.float()
            return self.basis @ work @ self.basis.T
