"""Equalised-learning-rate layers (Karras et al., ProGAN, ICLR 2018), as Yu et al.'s classifier uses.

The stored weight is drawn from N(0, 1); at run time it is multiplied by ``gain / sqrt(fan_in)`` (He
initialisation applied dynamically), so every layer learns at the same effective rate under Adam.
Biases start at zero and are not scaled. ``gain`` is sqrt(2) for layers followed by LeakyReLU and 1
for the output layer, as in the official code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class EqualizedConv2d(nn.Module):
    """A ``kernel`` x ``kernel`` convolution, stride 1, with equalised LR and reflect ("same") padding."""

    def __init__(self, cin: int, cout: int, kernel: int, gain: float = math.sqrt(2.0), padding_mode: str = "reflect"):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and positive, got {kernel}")
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = gain / math.sqrt(cin * kernel * kernel)
        self.pad = kernel // 2
        self.padding_mode = padding_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode=self.padding_mode)
        return F.conv2d(x, self.weight * self.scale, self.bias)


class EqualizedLinear(nn.Module):
    """A fully connected layer with equalised LR (input flattened)."""

    def __init__(self, fin: int, fout: int, gain: float = math.sqrt(2.0)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fout, fin))
        self.bias = nn.Parameter(torch.zeros(fout))
        self.scale = gain / math.sqrt(fin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.weight * self.scale, self.bias)
