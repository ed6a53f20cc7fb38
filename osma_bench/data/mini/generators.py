"""The generative models of the mini benchmark: autoencoding generators of seven architecture families.

Each generator is an encoder-decoder: a strided-convolution encoder squeezes a real patch of its
training domain into a small latent map (a quarter of the side, :attr:`GeneratorBudget.latent`
channels) and a decoder synthesises the full-resolution image from it. All the high-frequency
content of a generated image is made by the decoder, so its upsampling path leaves the model's
fingerprint, as in GANs (Odena et al., 2016; Yu et al., ICCV 2019; Frank et al., ICML 2020).

The families differ where fingerprints come from:

=================  ==========================================================================
``tconv``          transposed convolution 4x4 / 2, BatchNorm, ReLU (checkerboard artefacts)
``nearest``        nearest-neighbour upsampling then 3x3 convolution, BatchNorm, ReLU
``bilinear``       bilinear upsampling then 3x3 convolution, BatchNorm, ReLU
``pixelshuffle``   3x3 convolution to 4x channels then sub-pixel shuffle, BatchNorm, ReLU
``tconv3_in``      transposed convolution 3x3 / 2 (uneven overlap), InstanceNorm, LeakyReLU
``deep``           residual blocks at the latent size and two convolutions per upsampling stage
``gan``            nearest + conv without normalisation, trained with an adversarial loss
                   (hinge, small patch discriminator) on top of the L1 reconstruction loss
=================  ==========================================================================

Training (see :func:`pretrain_architecture` and :func:`finetune_generator`): one shared
pre-training per architecture on the known domains, then, per (domain, seed), a copy of the
pre-trained weights is perturbed with seed-specific noise and fine-tuned on its domain with a
seed-specific data order. Seeds of one architecture therefore share most of their fingerprint and
differ in a part that the fine-tuning makes; the pre-training length, the fine-tuning length and
the perturbation size set how far apart models are (how hard the benchmark is).

Everything is deterministic for a given seed: weights and data are drawn from seeded generators
and the caller runs the training under :func:`deterministic_torch` (one CPU thread).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from osma_bench.data.mini.sources import LoadedImage, random_crops
from osma_bench.errors import OsmaError

ARCHITECTURES: dict[str, str] = {
    "tconv": "transposed convolution 4x4 stride 2 + BatchNorm + ReLU",
    "nearest": "nearest-neighbour upsampling + 3x3 convolution + BatchNorm + ReLU",
    "bilinear": "bilinear upsampling + 3x3 convolution + BatchNorm + ReLU",
    "pixelshuffle": "3x3 convolution + pixel shuffle (sub-pixel) + BatchNorm + ReLU",
    "tconv3_in": "transposed convolution 3x3 stride 2 + InstanceNorm + LeakyReLU(0.2)",
    "deep": "two residual blocks + nearest upsampling with two 3x3 convolutions per stage + BatchNorm + ReLU",
    "gan": "nearest upsampling + 3x3 convolution + LeakyReLU(0.2), no normalisation; L1 + hinge GAN loss",
}


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts (stable across runs and Python processes)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@contextmanager
def deterministic_torch(threads: int = 1) -> Iterator[None]:
    """Run torch with a fixed number of intra-op threads (restored afterwards).

    On the CPU, torch's kernels give bit-identical results for a fixed thread count; a single
    thread per process makes the content independent of how many worker processes run.
    """
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)


@dataclass(frozen=True)
class GeneratorBudget:
    """How generators are made; the knobs that set the benchmark's difficulty.

    Attributes:
        width: channels of the decoder's last stage (the encoder's first).
        latent: channels of the latent map (a quarter of the image side).
        batch: patches per training step.
        lr: Adam learning rate of the pre-training.
        finetune_lr: Adam learning rate of the per-(domain, seed) fine-tuning.
        pretrain_steps: shared pre-training steps per architecture (on the known domains).
        finetune_steps: fine-tuning steps per (domain, seed).
        perturb: std of the seed-specific noise added to the pre-trained weights before
            fine-tuning, relative to each tensor's own std.
        adv_weight: weight of the adversarial loss for the ``gan`` family.
    """

    width: int = 32
    latent: int = 8
    batch: int = 32
    lr: float = 2e-3
    finetune_lr: float = 2e-3
    pretrain_steps: int = 300
    finetune_steps: int = 100
    perturb: float = 0.05
    adv_weight: float = 0.05


class _Up(nn.Module):
    """One x2 upsampling stage of a family's decoder."""

    def __init__(self, family: str, cin: int, cout: int) -> None:
        super().__init__()
        if family == "tconv":
            layers = [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU()]
        elif family == "nearest":
            layers = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1)]
            layers += [nn.BatchNorm2d(cout), nn.ReLU()]
        elif family == "bilinear":
            layers = [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)]
            layers += [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU()]
        elif family == "pixelshuffle":
            layers = [nn.Conv2d(cin, 4 * cout, 3, 1, 1), nn.PixelShuffle(2), nn.BatchNorm2d(cout), nn.ReLU()]
        elif family == "tconv3_in":
            layers = [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)]
            layers += [nn.InstanceNorm2d(cout, affine=True), nn.LeakyReLU(0.2)]
        elif family == "deep":
            layers = [nn.Upsample(scale_factor=2, mode="nearest")]
            layers += [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU()]
            layers += [nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU()]
        elif family == "gan":
            layers = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1), nn.LeakyReLU(0.2)]
        else:
            raise OsmaError(f"mini: unknown generator architecture {family!r}; known: {', '.join(ARCHITECTURES)}")
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class AutoencodingGenerator(nn.Module):
    """Encoder (to a side/4 latent map) + a family-specific decoder; outputs images in [-1, 1]."""

    def __init__(self, family: str, width: int = 32, latent: int = 8) -> None:
        super().__init__()
        if family not in ARCHITECTURES:
            raise OsmaError(f"mini: unknown generator architecture {family!r}; known: {', '.join(ARCHITECTURES)}")
        self.family = family
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 2 * w, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, latent, 1),
        )
        act: nn.Module = nn.LeakyReLU(0.2) if family in ("gan", "tconv3_in") else nn.ReLU()
        stem: list[nn.Module] = [nn.Conv2d(latent, 2 * w, 3, 1, 1), act]
        if family == "deep":
            stem += [_ResBlock(2 * w), _ResBlock(2 * w)]
        self.decoder = nn.Sequential(
            *stem, _Up(family, 2 * w, w), _Up(family, w, w), nn.Conv2d(w, 3, 3, 1, 1), nn.Tanh()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class _PatchDiscriminator(nn.Module):
    """A small patch discriminator for the ``gan`` family (spectral-norm-free, LeakyReLU)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [-1, 1] -> (N, H, W, 3) uint8 (rounded, clipped)."""
    arr = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return arr.permute(0, 2, 3, 1).contiguous().numpy()


@dataclass
class TrainResult:
    """A trained generator's weights and its training record."""

    state: dict
    steps: int
    final_loss: float


def _train(
    model: AutoencodingGenerator,
    images: list[LoadedImage],
    size: int,
    steps: int,
    budget: GeneratorBudget,
    seed: int,
    lr: float,
) -> float:
    """Train in place for ``steps`` steps; return the mean L1 loss over the last (up to) 10 steps."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))
    disc = opt_d = None
    if model.family == "gan":
        disc = _PatchDiscriminator(budget.width)
        opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    model.train()
    recent: list[float] = []
    for _ in range(steps):
        x = to_tensor(random_crops(images, budget.batch, size, rng).pixels)
        y = model(x)
        rec = F.l1_loss(y, x)
        loss = rec
        if disc is not None:
            opt_d.zero_grad()
            d_loss = F.relu(1.0 - disc(x)).mean() + F.relu(1.0 + disc(y.detach())).mean()
            d_loss.backward()
            opt_d.step()
            loss = rec - budget.adv_weight * disc(y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        recent = (recent + [float(rec.detach())])[-10:]
    model.eval()
    return float(np.mean(recent)) if recent else float("nan")


def pretrain_architecture(
    family: str, images: list[LoadedImage], size: int, budget: GeneratorBudget, seed: int
) -> TrainResult:
    """The shared pre-training of one architecture (weights seeded by ``seed``) on ``images``."""
    torch.manual_seed(derive_seed(seed, family, "init"))
    model = AutoencodingGenerator(family, budget.width, budget.latent)
    loss = _train(model, images, size, budget.pretrain_steps, budget, derive_seed(seed, family, "pretrain"), budget.lr)
    return TrainResult(copy.deepcopy(model.state_dict()), budget.pretrain_steps, loss)


def finetune_generator(
    family: str,
    pretrained: dict,
    images: list[LoadedImage],
    size: int,
    budget: GeneratorBudget,
    seed: int,
) -> TrainResult:
    """One (architecture, domain, seed) generator: perturb the pre-trained weights, fine-tune on ``images``.

    ``seed`` must already identify the (build seed, architecture, domain, model seed) combination.
    """
    model = AutoencodingGenerator(family, budget.width, budget.latent)
    model.load_state_dict(pretrained)
    gen = torch.Generator().manual_seed(derive_seed(seed, "perturb"))
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 1 and budget.perturb > 0:
                p.add_(torch.randn(p.shape, generator=gen) * (budget.perturb * float(p.std())))
    loss = _train(model, images, size, budget.finetune_steps, budget, derive_seed(seed, "finetune"),
                  budget.finetune_lr)
    return TrainResult(copy.deepcopy(model.state_dict()), budget.finetune_steps, loss)


@torch.no_grad()
def generate(
    family: str,
    state: dict,
    images: list[LoadedImage],
    n: int,
    size: int,
    budget: GeneratorBudget,
    seed: int,
    chunk: int = 256,
) -> np.ndarray:
    """``n`` distinct generated ``size`` x ``size`` uint8 images: the generator applied to fresh patches.

    The input patches are distinct windows of ``images``; an output that repeats an earlier one
    (possible only for near-flat inputs) is replaced by the output of a newly drawn window.
    """
    model = AutoencodingGenerator(family, budget.width, budget.latent)
    model.load_state_dict(state)
    model.eval()
    rng = np.random.default_rng(seed)
    crops = random_crops(images, n, size, rng, unique=True).pixels
    out = np.empty_like(crops)
    for start in range(0, n, chunk):
        out[start : start + chunk] = to_uint8(model(to_tensor(crops[start : start + chunk])))
    seen: set[bytes] = set()
    for i in range(n):
        for _ in range(_MAX_REGENERATE):
            key = hashlib.sha256(out[i].tobytes()).digest()
            if key not in seen:
                break
            out[i] = to_uint8(model(to_tensor(random_crops(images, 1, size, rng).pixels)))[0]
        seen.add(key)
    return out


_MAX_REGENERATE = 100
