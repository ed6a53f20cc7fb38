"""Post-processing perturbations of test images and the ``--perturb`` spec that names them.

Every perturbation maps a batch of uint8 images ``(B, 3, H, W)`` (what the image store holds and
what the harness turns into the float input of ``Method.predict``) to a uint8 batch of the same
shape, as a re-saved image file would be. Each image is processed on its own, so the result does
not depend on the batch it is in; the only random one (``noise``) draws its noise from a generator
seeded by ``(seed, perturbation, global image index)``.

| kind | strength | what is done to each image |
|---|---|---|
| ``jpeg`` | quality 1-100 | encoded by Pillow as baseline JPEG at that quality, 4:2:0 chroma subsampling, no optimisation, and decoded |
| ``resize`` | scale in (0, 1] | resized to ``round(scale * side)`` and back to the original size (interpolation stated, antialias on) |
| ``blur`` | sigma in pixels | Gaussian blur, separable kernel of radius ``ceil(3 sigma)``, reflected borders |
| ``noise`` | std on the [0, 1] scale | plus i.i.d. Gaussian noise per pixel and channel, clipped to [0, 1] |
| ``crop`` | fraction in (0, 1] | the central ``round(fraction * side)`` square, resized back to the original size |

Every result is rounded to the nearest integer and clipped to 0-255 (docs/ROBUSTNESS.md).
"""

from __future__ import annotations

import io
import math
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from osma_bench.errors import OsmaError

#: ``osma-bench robustness`` without ``--perturb``.
DEFAULT_SPEC = "jpeg:95,85,75,50 resize:0.75,0.5 blur:0.5,1.0 noise:0.01,0.02 crop:0.9"
INTERPOLATIONS = ("bilinear", "bicubic")
JPEG_SUBSAMPLING = "4:4:4"
CLEAN = "clean"


@dataclass(frozen=True)
class Settings:
    """What a pass needs besides the perturbations: the resampling filter and the noise seed."""

    interpolation: str = "bilinear"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise OsmaError(f"--interpolation {self.interpolation!r}: choose {' or '.join(INTERPOLATIONS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise OsmaError(f"--seed must be a non-negative integer, got {self.seed!r}")


# --------------------------------------------------------------------------- the operations


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp_(0, 255).to(torch.uint8)


def _resample(x: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """Float64 resampling of (B, 3, h, w) to ``size`` (antialias on, as for a downscale in an editor)."""
    return F.interpolate(x, size=size, mode=interpolation, align_corners=False, antialias=True)


def jpeg(images: torch.Tensor, quality: float, indices: np.ndarray, settings: Settings) -> torch.Tensor:
    """Encode and decode each image with Pillow at ``quality``."""
    from PIL import Image

    out = torch.empty_like(images)
    for i, chw in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(chw.permute(1, 2, 0).numpy(), "RGB").save(buf, format="JPEG", quality=int(quality),
                                                                  subsampling=JPEG_SUBSAMPLING, optimize=False)
        buf.seek(0)
        with Image.open(buf) as decoded:
            pixels = np.asarray(decoded.convert("RGB"))
        out[i] = torch.from_numpy(pixels.transpose(2, 0, 1).copy())
    return out


def resize(images: torch.Tensor, scale: float, indices: np.ndarray, settings: Settings) -> torch.Tensor:
    """Down to ``round(scale * side)`` pixels and back up, with the stated interpolation."""
    h, w = images.shape[-2:]
    small = (max(1, round(scale * h)), max(1, round(scale * w)))
    x = _resample(images.double(), small, settings.interpolation)
    return _to_uint8(_resample(x, (h, w), settings.interpolation))


def crop(images: torch.Tensor, fraction: float, indices: np.ndarray, settings: Settings) -> torch.Tensor:
    """The central ``fraction`` of each side, resized back to the full size."""
    h, w = images.shape[-2:]
    ch, cw = max(1, round(fraction * h)), max(1, round(fraction * w))
    top, left = (h - ch) // 2, (w - cw) // 2
    part = images[..., top:top + ch, left:left + cw].double()
    return _to_uint8(_resample(part, (h, w), settings.interpolation))


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian weights (float64) of radius ``ceil(3 sigma)``."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-(x**2) / (2 * sigma**2))
    return weights / weights.sum()


def _blur_axis(x: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    radius = (len(weights) - 1) // 2
    n = x.shape[dim]
    # reflected indices (edge pixel not repeated), folded until inside for kernels wider than the image
    pos = torch.arange(-radius, n + radius)
    period = 2 * (n - 1) if n > 1 else 1
    pos = torch.remainder(pos, period)
    pos = torch.where(pos >= n, period - pos, pos)
    padded = x.index_select(dim, pos)
    out = torch.zeros_like(x)
    for k, wk in enumerate(weights.tolist()):
        out += wk * padded.narrow(dim, k, n)
    return out


def blur(images: torch.Tensor, sigma: float, indices: np.ndarray, settings: Settings) -> torch.Tensor:
    """Separable Gaussian blur with standard deviation ``sigma`` pixels (float64, reflected borders)."""
    weights = gaussian_kernel(sigma)
    x = _blur_axis(images.double(), weights, dim=2)
    return _to_uint8(_blur_axis(x, weights, dim=3))


def noise(images: torch.Tensor, std: float, indices: np.ndarray, settings: Settings) -> torch.Tensor:
    """Additive Gaussian noise of ``std`` on the [0, 1] scale, seeded per image, clipped to [0, 1]."""
    tag = zlib.crc32(f"noise:{std:g}".encode())
    x = images.double().numpy() / 255.0
    for i, index in enumerate(np.asarray(indices, np.int64)):
        rng = np.random.default_rng([int(settings.seed), tag, int(index)])
        x[i] += rng.normal(0.0, std, size=x[i].shape)
    return _to_uint8(torch.from_numpy(np.clip(x, 0.0, 1.0) * 255.0))


# --------------------------------------------------------------------------- kinds and the spec


@dataclass(frozen=True)
class Kind:
    """One kind of perturbation: how a strength is read and checked, and what it does."""

    name: str
    unit: str
    integer: bool
    low: float
    high: float
    low_open: bool
    apply: Callable[[torch.Tensor, float, np.ndarray, Settings], torch.Tensor]
    #: True when a larger strength is a milder perturbation (JPEG quality, scale, crop fraction).
    larger_is_milder: bool

    def check(self, text: str) -> float:
        value_text = text.strip()
        try:
            value = float(value_text)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or (self.integer and not re.fullmatch(r"\d+", value_text)):
            raise OsmaError(f"--perturb {self.name}: {text!r} is not a{'n integer' if self.integer else ' number'} "
                            f"({self.unit})")
        below = value <= self.low if self.low_open else value < self.low
        if below or value > self.high:
            bracket = "(" if self.low_open else "["
            raise OsmaError(f"--perturb {self.name}: {text!r} is outside {bracket}{self.low:g}, {self.high:g}] "
                            f"({self.unit})")
        return float(int(value)) if self.integer else value


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("jpeg", "JPEG quality", True, 1, 100, False, jpeg, True),
    Kind("resize", "scale of the intermediate size", False, 0, 1, True, resize, True),
    Kind("blur", "Gaussian sigma in pixels", False, 0, 20, True, blur, False),
    Kind("noise", "Gaussian std on the [0, 1] scale", False, 0, 1, True, noise, False),
    Kind("crop", "central crop fraction of each side", False, 0, 1, True, crop, True),
)}


@dataclass(frozen=True)
class Perturbation:
    """One perturbation at one strength, e.g. ``jpeg:75``."""

    kind: str
    strength: float

    @property
    def strength_text(self) -> str:
        return f"{self.strength:g}"

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.strength_text}"

    def apply(self, images: torch.Tensor, indices: np.ndarray, settings: Settings) -> torch.Tensor:
        """The perturbed uint8 batch (``images``: uint8 (B, 3, H, W) on the CPU)."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 (B, 3, H, W) images, got {images.dtype} {tuple(images.shape)}")
        if len(indices) != len(images):
            raise ValueError(f"{len(images)} images but {len(indices)} indices")
        if not len(images):
            return images.clone()
        return KINDS[self.kind].apply(images, self.strength, indices, settings)


def parse_spec(items: str | Iterable[str] | None) -> list[Perturbation]:
    """``"jpeg:95,75 blur:1"`` (or a list of such texts) -> perturbations in the order given.

    Tokens are separated by spaces (or ``;``); each is ``kind:s1,s2,...``. Duplicates are dropped.
    ``None``, an empty text or ``default`` mean :data:`DEFAULT_SPEC`.
    """
    texts = [items] if isinstance(items, str) or items is None else list(items)
    tokens = [t for text in texts for t in re.split(r"[\s;]+", text or "") if t]
    if not tokens or tokens == ["default"]:
        tokens = DEFAULT_SPEC.split()
    found: list[Perturbation] = []
    for token in tokens:
        name, sep, values = token.partition(":")
        kind = KINDS.get(name.strip().lower())
        if kind is None:
            raise OsmaError(f"--perturb {token!r}: unknown perturbation {name!r}; choose from "
                            f"{', '.join(KINDS)} (e.g. {DEFAULT_SPEC!r})")
        strengths = [v for v in values.split(",") if v.strip()]
        if not sep or not strengths:
            raise OsmaError(f"--perturb {token!r}: give strengths after a colon, e.g. {kind.name}:"
                            f"{DEFAULT_SPEC.split(kind.name + ':')[1].split()[0]}")
        for text in strengths:
            p = Perturbation(kind.name, kind.check(text))
            if p not in found:
                found.append(p)
    return found


def format_spec(perturbations: Iterable[Perturbation]) -> str:
    """The canonical text of a spec: kinds in order of first appearance, strengths as given."""
    by_kind: dict[str, list[str]] = {}
    for p in perturbations:
        by_kind.setdefault(p.kind, []).append(p.strength_text)
    return " ".join(f"{kind}:{','.join(values)}" for kind, values in by_kind.items())


def severity_key(kind: str, strength: float) -> float:
    """Sort key: milder first (for tables and plots)."""
    return -strength if KINDS[kind].larger_is_milder else strength
