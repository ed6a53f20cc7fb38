"""POSE's augmentation model: two 3x3 convolutions (3 -> 32 -> 3) with no nonlinearity.

The composition is one linear 5x5 filter per output channel, a tiny "generator" whose trace on
an image simulates an unseen model's fingerprint (Yang et al., CVPR 2023, Sec. 3.2).
"""

from __future__ import annotations

import torch
from torch import nn


class AugmentationModel(nn.Module):
    """Conv(3 -> hidden, k) followed by Conv(hidden -> 3, k), 'same' padding, no activation."""

    def __init__(self, hidden: int = 32, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(3, hidden, kernel_size, 1, pad)
        self.conv2 = nn.Conv2d(hidden, 3, kernel_size, 1, pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))
