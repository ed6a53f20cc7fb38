"""Generated-sample machinery shared by ARPL+CS and DIAS: a DCGAN and the auxiliary BatchNorm.

DCGAN (Radford et al., ICLR 2016) as the ARPL and DIAS official code builds it for 32x32 images
(iCGY96/ARPL, wjun0830/Difficulty-Aware-Simulator), generalised to any power-of-two image size of at
least 16:

- :class:`Generator`: noise ``(B, nz, 1, 1)`` -> ConvTranspose 4x4 to a 4x4 map with ``8 ngf``
  channels, then ConvTranspose 4x4 stride 2 + BN + ReLU doubling the side and halving the channels
  (never below ``ngf``), the last one to 3 channels with **Tanh** (the suite's images are in [-1, 1];
  the official generators end in Sigmoid for [0, 1] data).
- :class:`Discriminator`: Conv 4x4 stride 2 (3 -> ``2 ndf``) + LeakyReLU(0.2), then Conv 4x4 stride 2
  + BN + LeakyReLU doubling the channels (at most ``8 ndf``) down to a 4x4 map, Conv 4x4 (valid) to
  ``16 ndf`` channels + Sigmoid, global average pooling and Linear(16 ndf, 1). The official model
  ends with a second Sigmoid and trains with BCELoss; here ``forward`` returns the logit and the
  loss is BCE-with-logits (the same function, numerically safer).
- Weights: convolutions N(0, 0.02), BatchNorm weights N(1, 0.02) and biases 0 (official init).

ARPL's auxiliary BatchNorm ("ABN", Chen et al. TPAMI 2021) gives generated images their own
BatchNorm statistics and affine parameters in the classifier. :func:`add_auxiliary_batchnorm`
replaces every ``BatchNorm2d`` of a model in place by a :class:`RoutedBatchNorm2d` holding the
original layer (``main``) and a copy (``aux``); :func:`route_batchnorm` selects which one runs.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator

import torch
from torch import nn

from osma_bench.hparams import Float, HParam, Int

#: The DCGAN's hyperparameters, shared by ARPL+CS and DIAS (paper / official code values).
GAN_HPARAMS: tuple[HParam, ...] = (
    Int("nz", 100, "size of the generator's noise vector", low=1, paper="100"),
    Int("ngf", 64, "generator channels", low=1, paper="64; mini 16, smoke 8"),
    Int("ndf", 64, "discriminator channels", low=1, paper="64; mini 16, smoke 8"),
    Float("gan_lr", 2e-4, "Adam learning rate of generator and discriminator", low=0.0, low_open=True,
          paper="2e-4"),
    Float("gan_beta1", 0.5, "Adam beta1 of the GAN", low=0.0, high=1.0, high_open=True, paper="0.5"),
    Float("gan_beta2", 0.999, "Adam beta2 of the GAN", low=0.0, high=1.0, high_open=True, paper="0.999"),
)
#: The GAN's per-profile scaling (a GAN for 32x32 images within a CPU budget).
GAN_PROFILE_DEFAULTS = {"mini": {"ngf": 16, "ndf": 16}, "smoke": {"ngf": 8, "ndf": 8}}


def _check_size(image_size: int) -> int:
    steps = math.log2(image_size / 4) if image_size >= 16 else -1
    if steps < 2 or steps != int(steps):
        raise ValueError(f"DCGAN needs a power-of-two image size of at least 16, got {image_size}")
    return int(steps)


def dcgan_init(module: nn.Module) -> None:
    """Official DCGAN initialisation: conv weights N(0, 0.02); BatchNorm N(1, 0.02) and bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """DCGAN generator: ``(B, nz, 1, 1)`` noise -> ``(B, 3, image_size, image_size)`` in [-1, 1]."""

    def __init__(self, image_size: int, nz: int = 100, ngf: int = 64) -> None:
        super().__init__()
        steps = _check_size(image_size)
        self.nz = nz
        channels = ngf * 8
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, channels, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(channels), nn.ReLU(True)]
        for _ in range(steps - 1):
            out = max(channels // 2, ngf)
            layers += [nn.ConvTranspose2d(channels, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
            channels = out
        layers += [nn.ConvTranspose2d(channels, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def sample_noise(self, batch: int, device: torch.device) -> torch.Tensor:
        """Standard normal noise ``(batch, nz, 1, 1)`` from torch's global generator."""
        return torch.randn(batch, self.nz, 1, 1, device=device)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.main(noise)


class Discriminator(nn.Module):
    """DCGAN discriminator: ``(B, 3, S, S)`` -> ``(B,)`` real-vs-fake logits."""

    def __init__(self, image_size: int, ndf: int = 64) -> None:
        super().__init__()
        steps = _check_size(image_size)
        channels = ndf * 2
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(steps - 1):
            out = min(channels * 2, ndf * 8)
            layers += [nn.Conv2d(channels, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        layers += [nn.Conv2d(channels, ndf * 16, 4, 1, 0, bias=False), nn.Sigmoid()]
        self.main = nn.Sequential(*layers)
        self.classifier = nn.Linear(ndf * 16, 1)
        self.apply(dcgan_init)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.main(images).mean(dim=(2, 3))).flatten()


class RoutedBatchNorm2d(nn.Module):
    """Two BatchNorm2d layers, ``main`` (real data) and ``aux`` (generated data); ``route`` picks one."""

    def __init__(self, main: nn.BatchNorm2d) -> None:
        super().__init__()
        self.main = main
        self.aux = copy.deepcopy(main)
        self.route = "main"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aux(x) if self.route == "aux" else self.main(x)


def add_auxiliary_batchnorm(model: nn.Module) -> int:
    """Replace every ``BatchNorm2d`` below ``model`` by a :class:`RoutedBatchNorm2d`; returns the count.

    The aux copy starts from the main layer's current parameters and statistics.
    """
    count = 0
    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, RoutedBatchNorm2d(child))
            count += 1
        elif not isinstance(child, RoutedBatchNorm2d):
            count += add_auxiliary_batchnorm(child)
    return count


@contextlib.contextmanager
def route_batchnorm(model: nn.Module, route: str) -> Iterator[None]:
    """Within the block, every :class:`RoutedBatchNorm2d` of ``model`` uses ``route`` ("main" or "aux")."""
    if route not in ("main", "aux"):
        raise ValueError(f"route must be 'main' or 'aux', not {route!r}")
    layers = [m for m in model.modules() if isinstance(m, RoutedBatchNorm2d)]
    previous = [m.route for m in layers]
    for m in layers:
        m.route = route
    try:
        yield
    finally:
        for m, old in zip(layers, previous, strict=True):
            m.route = old


def gan_optimizers(generator: Generator, discriminator: Discriminator, lr: float,
                   betas: tuple[float, float]) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam optimisers of the generator and the discriminator (official: lr 2e-4, betas (0.5, 0.999))."""
    return (torch.optim.Adam(generator.parameters(), lr=lr, betas=betas),
            torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas))


def discriminator_step(discriminator: Discriminator, optimizer: torch.optim.Optimizer, real: torch.Tensor,
                       fake: torch.Tensor) -> torch.Tensor:
    """One BCE step of the discriminator: real images -> 1, (detached) fakes -> 0; returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    out_real = discriminator(real)
    out_fake = discriminator(fake.detach())
    bce = nn.functional.binary_cross_entropy_with_logits
    loss = bce(out_real, torch.ones_like(out_real)) + bce(out_fake, torch.zeros_like(out_fake))
    loss.backward()
    optimizer.step()
    return loss.detach()


def generator_adversarial_loss(discriminator: Discriminator, fake: torch.Tensor) -> torch.Tensor:
    """The generator's BCE against the "real" label (gradients flow into the generator)."""
    out = discriminator(fake)
    return nn.functional.binary_cross_entropy_with_logits(out, torch.ones_like(out))


class GANStateMixin:
    """Checkpointing and sampling of the confusing-sample GAN shared by ARPL+CS and DIAS.

    The host method defines ``generator``, ``discriminator``, ``opt_g``, ``opt_d`` and ``device``.
    """

    def gan_state_dict(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
        }

    def load_gan_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])

    def generator_samples(self, n: int):
        """``n`` images from the generator, in eval mode, without gradients."""
        import torch

        self.generator.eval()
        with torch.no_grad():
            return self.generator(self.generator.sample_noise(n, self.device))
