"""Simple_CNN: the classifier of POSE (Yang et al., CVPR 2023) and of its Base model.

Four stages of [Conv 4x4 stride 2 + BN + LeakyReLU(0.2)] then [Conv 3x3 + BN + LeakyReLU(0.2)],
channels 64/128/256/512, a fully connected layer to a 512-d feature, Dropout(0.2) and a linear
head. At 128x128 the flattened map is 8x8x512 (FC 32768 -> 512), as in the paper; at other sizes the
FC input follows the map size (side / 16). The input transform (DCT or none) runs inside forward,
so callers pass pixel images in [-1, 1]; under autocast the transform and the first convolution
stay in float32 (the unnormalised DCT reaches 4 N^2).
"""

from __future__ import annotations

import torch
from torch import nn

from osma_bench.nn.dct import DCT2d


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


def _same(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class SimpleCNN(nn.Module):
    """POSE's Simple_CNN. ``forward`` returns ``(logits, feature)``.

    Args:
        num_classes: size of the classification head (K).
        image_size: input side (divisible by 16).
        input_transform: ``"dct"`` (unnormalised DCT-II, POSE), ``"dct_ortho"`` or ``"none"``.
        width: channels of the first stage (64 in the paper).
        feature_dim: size of the feature (512 in the paper).
        dropout: dropout before the head (0.2 in the paper).
    """

    def __init__(
        self,
        num_classes: int,
        image_size: int = 128,
        input_transform: str = "dct",
        width: int = 64,
        feature_dim: int = 512,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be divisible by 16, got {image_size}")
        if input_transform == "dct":
            self.transform: nn.Module = DCT2d(image_size, None)
        elif input_transform == "dct_ortho":
            self.transform = DCT2d(image_size, "ortho")
        elif input_transform == "none":
            self.transform = nn.Identity()
        else:
            raise ValueError(f"unknown input_transform {input_transform!r}")
        w = width
        self.stem = _down(3, w)
        self.stages = nn.Sequential(
            _same(w, w),
            _down(w, 2 * w),
            _same(2 * w, 2 * w),
            _down(2 * w, 4 * w),
            _same(4 * w, 4 * w),
            _down(4 * w, 8 * w),
            _same(8 * w, 8 * w),
        )
        side = image_size // 16
        self.fc = nn.Linear(8 * w * side * side, feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, num_classes)
        self.feature_dim = feature_dim

    def stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input transform and first convolution block, kept in float32 under autocast."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.stem(self.transform(x.float()))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 512-d feature (before dropout and head)."""
        h = self.stages(self.stem_forward(x))
        return self.fc(h.flatten(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.features(x)
        return self.head(self.dropout(feature)), feature
