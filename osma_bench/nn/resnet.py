"""ResNet backbones (torchvision) for the methods that use one: RepMix and Girish et al.

``resnet_backbone(depth, width, pretrained)`` returns the network without its ``fc`` layer and the
size of its pooled feature. ``width`` is the channel count of the stem and of the first stage (64 in
the standard ResNets; the stages have width, 2 width, 4 width, 8 width planes): at 64 the model is
exactly torchvision's ``resnet{depth}``, so torchvision's published ImageNet weights
(``ResNet50_Weights.IMAGENET1K_V1`` and friends) load, read by :mod:`osma_bench.nn.weights` with
``weights_only=True`` and their published hash; a smaller width builds the same architecture
narrower from torchvision's ``BasicBlock``/``Bottleneck`` (for CPU profiles; no pretrained weights).
``small_stem`` replaces the ImageNet stem (7x7 stride-2 convolution + 3x3 stride-2 max pooling, /4)
by a 3x3 stride-1 convolution without pooling, as ResNets for 32x32 images do (He et al. 2016,
CIFAR): a 32x32 image then leaves layer4 at 4x4 instead of 1x1.

The backbone takes images in [-1, 1] and maps them to ImageNet's normalisation inside ``forward``
(so pretrained weights see the statistics they were trained on). Weights are never downloaded
silently in the background: when they are not in torch's hub cache, one download is tried and, if
it fails (offline machines), an :class:`OsmaError` says where to put the file or how to train from
scratch instead.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from osma_bench.errors import OsmaError
from osma_bench.nn.weights import published_weights

#: depth -> (block type, blocks per stage, torchvision constructor, weights enum)
_ARCHS = {
    18: (tv_resnet.BasicBlock, [2, 2, 2, 2], tv_resnet.resnet18, tv_resnet.ResNet18_Weights),
    34: (tv_resnet.BasicBlock, [3, 4, 6, 3], tv_resnet.resnet34, tv_resnet.ResNet34_Weights),
    50: (tv_resnet.Bottleneck, [3, 4, 6, 3], tv_resnet.resnet50, tv_resnet.ResNet50_Weights),
    101: (tv_resnet.Bottleneck, [3, 4, 23, 3], tv_resnet.resnet101, tv_resnet.ResNet101_Weights),
    152: (tv_resnet.Bottleneck, [3, 8, 36, 3], tv_resnet.resnet152, tv_resnet.ResNet152_Weights),
}

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNetBackbone(nn.Module):
    """A torchvision ResNet without ``fc``: ``feature_map`` (after layer4) and pooled ``forward``.

    ``forward(x)`` returns the (B, feature_dim) globally average-pooled feature of ``x`` in [-1, 1].
    ``feature_map(x)`` returns the layer4 map before pooling (RepMix mixes there).
    """

    def __init__(self, net: tv_resnet.ResNet, feature_dim: int) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = feature_dim
        # [-1, 1] -> [0, 1] -> ImageNet normalisation, folded into one affine map per channel.
        std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)
        mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        self.register_buffer("in_scale", 0.5 / std, persistent=False)
        self.register_buffer("in_shift", (0.5 - mean) / std, persistent=False)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Input normalisation ([-1, 1] -> ImageNet statistics) and conv1, bn1, relu, maxpool."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x * self.in_scale + self.in_shift))))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The layer4 feature map (B, feature_dim, h, w) of images in [-1, 1]."""
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def pool(self, fmap: torch.Tensor) -> torch.Tensor:
        """Global average pooling of a feature map to (B, feature_dim)."""
        return self.avgpool(fmap).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_map(x))


def _narrow_resnet(block: type, layers: list[int], width: int, small_stem: bool = False) -> tv_resnet.ResNet:
    """torchvision's ResNet with stem/stage widths scaled by ``width / 64`` (same blocks, same depth);
    with ``small_stem`` a 3x3 stride-1 first convolution and no max pooling."""
    net = tv_resnet.ResNet(block, layers, num_classes=1)
    net.inplanes = width
    if small_stem:
        net.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    else:
        net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    net.layer1 = net._make_layer(block, width, layers[0])
    net.layer2 = net._make_layer(block, 2 * width, layers[1], stride=2)
    net.layer3 = net._make_layer(block, 4 * width, layers[2], stride=2)
    net.layer4 = net._make_layer(block, 8 * width, layers[3], stride=2)
    for m in net.modules():  # torchvision's initialisation, applied to the rebuilt layers
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def _load_imagenet_weights(weights) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of ``weights``, read as data (see :mod:`osma_bench.nn.weights`)."""
    return published_weights(weights.url, str(weights))


def resnet_backbone(depth: int = 50, width: int = 64, pretrained: bool = False,
                    small_stem: bool = False) -> tuple[ResNetBackbone, int]:
    """A torchvision ResNet of ``depth`` (18/34/50/101/152) without ``fc``, and its feature size.

    Args:
        depth: ResNet depth.
        width: channels of the stem and first stage (64 = the standard network).
        pretrained: load torchvision's ImageNet weights (IMAGENET1K_V1); needs ``width == 64``.
        small_stem: a 3x3 stride-1 stem without max pooling (small images); no pretrained weights.

    Raises:
        OsmaError: unknown depth, bad width, pretrained with a narrow width or a small stem, or
        weights not available.
    """
    if depth not in _ARCHS:
        raise OsmaError(f"ResNet depth must be one of {sorted(_ARCHS)}, got {depth}")
    if width < 1:
        raise OsmaError(f"ResNet width must be a positive channel count, got {width}")
    block, layers, constructor, weights_enum = _ARCHS[depth]
    if pretrained and small_stem:
        raise OsmaError("pretrained=true needs the ImageNet stem, but small_stem is true; set small_stem=false or "
                        "pretrained=false")
    if width == 64 and not small_stem:
        net = constructor(weights=None)
        if pretrained:
            weights = weights_enum.IMAGENET1K_V1
            try:
                net.load_state_dict(_load_imagenet_weights(weights))
            except RuntimeError as exc:  # a valid weights file of another network
                raise OsmaError(f"{weights} weights do not fit ResNet-{depth}: {str(exc).splitlines()[0]}") from None
    else:
        if pretrained:
            raise OsmaError(
                f"pretrained=true needs the standard ResNet-{depth} (width 64), but width is {width}; "
                "set width=64 or pretrained=false"
            )
        net = _narrow_resnet(block, layers, width, small_stem)
    feature_dim = 8 * width * block.expansion
    return ResNetBackbone(net, feature_dim), feature_dim
