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

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
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


class _Boom:
    """Unpickling this would create a file (the attack: code run by torch.load)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _published_name(path: Path, stem: str) -> str:
    from osma_bench.io import sha256_file

    return f"{stem}-{sha256_file(path)[:8]}.pth"


def test_pretrained_weights_pickle_in_hub_cache_is_refused_not_executed(tmp_path: Path, monkeypatch):
    from osma_bench.nn.weights import load_weights_file, published_weights

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": _Boom(marker)}, evil)
    # without the published hash: torch.load(weights_only=True) refuses the pickle
    with pytest.raises(OsmaError, match="refused to unpickle"):
        load_weights_file(evil)
    assert not marker.exists()
    # in the hub cache under a name whose published hash it matches (worst case): still refused
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    name = _published_name(evil, "resnet18")
    evil.rename(cache / name)
    with pytest.raises(OsmaError, match="refused to unpickle"):
        published_weights(f"https://example.org/models/{name}", "test")
    assert not marker.exists()


def test_pretrained_weights_hash_mismatch_is_refused_before_parsing(tmp_path: Path, monkeypatch):
    from osma_bench.nn.weights import published_weights

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.save({"w": torch.zeros(2)}, tmp_path / "checkpoints" / "resnet18-00000000.pth")
    with pytest.raises(OsmaError, match="does not match the published prefix 00000000"):
        published_weights("https://example.org/resnet18-00000000.pth", "test")


def test_pretrained_weights_valid_file_loads_into_resnet(tmp_path: Path, monkeypatch):
    reference = tv_resnet.resnet18(weights=None)
    state = reference.state_dict()
    plain = tmp_path / "plain.pth"
    torch.save(state, plain)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    name = _published_name(plain, "resnet18")
    plain.rename(tmp_path / "checkpoints" / name)

    class FakeWeights:
        url = f"https://example.org/models/{name}"

    import osma_bench.nn.resnet as resnet_module

    monkeypatch.setitem(resnet_module._ARCHS, 18, (*resnet_module._ARCHS[18][:3],
                                                   type("W", (), {"IMAGENET1K_V1": FakeWeights()})))
    backbone, _ = resnet_backbone(depth=18, pretrained=True)
    assert torch.equal(backbone.conv1.weight, state["conv1.weight"])
    assert torch.equal(backbone.layer4[1].bn2.running_mean, state["layer4.1.bn2.running_mean"])


def test_pretrained_weights_of_another_network_are_refused(tmp_path: Path, monkeypatch):
    import osma_bench.nn.resnet as resnet_module

    other = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, other)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    name = _published_name(other, "resnet18")
    other.rename(tmp_path / "checkpoints" / name)

    class FakeWeights:
        url = f"https://example.org/{name}"

    monkeypatch.setitem(resnet_module._ARCHS, 18, (*resnet_module._ARCHS[18][:3],
                                                   type("W", (), {"IMAGENET1K_V1": FakeWeights()})))
    with pytest.raises(OsmaError, match="do not fit ResNet-18"):
        resnet_backbone(depth=18, pretrained=True)
