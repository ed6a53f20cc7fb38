"""The shared torchvision ResNet wrapper: shapes, standard/narrow widths, pretrained errors offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import resnet as tv_resnet

from osma_bench.errors import OsmaError
from osma_bench.nn.resnet import resnet_backbone


def test_standard_resnet50_matches_torchvision_without_fc():
    backbone, dim = resnet_backbone(depth=50)
    assert dim == 2048 and backbone.feature_dim == 2048
    reference = tv_resnet.resnet50(weights=None)
    expected = sum(p.numel() for p in reference.parameters()) - sum(p.numel() for p in reference.fc.parameters())
    assert sum(p.numel() for p in backbone.parameters()) == expected
    # the state dict keys are torchvision's (so ImageNet weights load), minus fc
    assert set(backbone.state_dict()) == {k for k in reference.state_dict() if not k.startswith("fc.")}


@pytest.mark.parametrize(("depth", "width", "dim"), [(18, 8, 64), (50, 16, 512)])
def test_narrow_resnet_shapes(depth, width, dim):
    backbone, feature_dim = resnet_backbone(depth=depth, width=width)
    assert feature_dim == dim
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert backbone(x).shape == (2, dim)
    fmap = backbone.feature_map(x)
    assert fmap.shape[:2] == (2, dim)
    assert torch.allclose(backbone.pool(fmap), backbone(x))


def test_bad_arguments_raise_osma_error():
    with pytest.raises(OsmaError, match="depth"):
        resnet_backbone(depth=20)
    with pytest.raises(OsmaError, match="width 64"):
        resnet_backbone(depth=50, width=16, pretrained=True)


def test_pretrained_offline_says_so(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tv_resnet.ResNet50_Weights.IMAGENET1K_V1.__class__, "get_state_dict",
                        lambda self, *a, **k: offline())
    with pytest.raises(OsmaError, match=r"not available offline.*pretrained=false"):
        resnet_backbone(depth=50, pretrained=True)


def test_small_stem_keeps_resolution_for_32px_images():
    """The ImageNet stem divides by 4 before layer1, leaving a 32x32 image 1x1 at layer4; the small
    stem (3x3 stride 1, no max pooling) leaves it 4x4."""
    x = torch.zeros(2, 3, 32, 32)
    imagenet, _ = resnet_backbone(depth=18, width=8)
    small, dim = resnet_backbone(depth=18, width=8, small_stem=True)
    assert imagenet.feature_map(x).shape[-1] == 1
    assert small.feature_map(x).shape == (2, dim, 4, 4) and small(x).shape == (2, dim)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    small64, _ = resnet_backbone(depth=50, width=64, small_stem=True)  # the standard width too
    assert small64.conv1.kernel_size == (3, 3)
    with pytest.raises(OsmaError, match="small_stem"):
        resnet_backbone(depth=50, width=64, pretrained=True, small_stem=True)
