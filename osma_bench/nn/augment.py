"""POSE's augmentation model: a few convolutions with no nonlinearity (paper: two 3x3, 3 -> 32 -> 3).

The composition of ``layers`` linear convolutions of kernel k is one linear filter of side
``layers * (k - 1) + 1`` per output channel (5x5 for the paper's model), a tiny "generator" whose
trace on an image simulates an unseen model's fingerprint (Yang et al., CVPR 2023, Sec. 3.2). The
number of layers and the kernel size are the architecture options the paper's ablation varies.
"""

from __future__ import annotations

import torch
from torch import nn


class AugmentationModel(nn.Module):
    """``layers`` convolutions, 'same' padding, no activation: 3 -> hidden -> ... -> hidden -> 3.

    One layer maps 3 -> 3 channels directly. Modules are named ``conv1`` .. ``conv<layers>`` (the
    paper's two-layer model has the state-dict keys of the official ``SingleLayer``).
    """

    def __init__(self, hidden: int = 32, kernel_size: int = 3, layers: int = 2) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be at least 1, got {layers}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-size output), got {kernel_size}")
        pad = kernel_size // 2
        widths = [3] + [hidden] * (layers - 1) + [3]
        self.layers = layers
        for i in range(layers):
            self.add_module(f"conv{i + 1}", nn.Conv2d(widths[i], widths[i + 1], kernel_size, 1, pad))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.layers):
            x = getattr(self, f"conv{i + 1}")(x)
        return x
