"""Batch-hard triplet loss (Hermans et al., 2017), as POSE uses it on its 512-d features."""

from __future__ import annotations

import torch


def batch_hard_triplet_loss(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Mean over anchors of relu(max d(a, p) - min d(a, n) + margin), Euclidean distance.

    Anchors with no positive other than themselves or with no negative contribute
    relu(0 - min d(a, n) + margin) and relu(max d(a, p) + margin - inf) = 0 respectively.
    """
    dist = torch.cdist(features, features, p=2)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    hardest_positive = dist.masked_fill(~same, float("-inf")).amax(dim=1).clamp_min(0.0)
    hardest_negative = dist.masked_fill(same, float("inf")).amin(dim=1)
    return torch.relu(hardest_positive - hardest_negative + margin).mean()
