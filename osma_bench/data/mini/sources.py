"""Real photographs for the mini benchmark, taken only from files that installed packages ship.

Nothing is downloaded: every file below is read from the package's own install folder
(scikit-image's ``data`` folder, scikit-learn's ``datasets/images`` and matplotlib's
``mpl-data/sample_data``). Files that scikit-image fetches on demand with pooch are not used.

Sources are grouped into *domains*, the "training datasets" of the generators:

- known domains (``portraits``, ``science``, ``textures``): known generators train on them and the
  ``real`` class is cropped from them;
- unseen-dataset domains (``objects``, ``grayscale``): only generators of the *unseen dataset*
  group train on them; no known model and no ``real`` training image comes from them;
- the unseen-real source (``unseen_real``): real photographs that appear only in the closed-set test
  (under ``real``), from packages no other domain uses.

Patches are square windows cropped at the file's native resolution (never resized). Windows that
are nearly flat (pixel standard deviation below :data:`MIN_PATCH_STD` grey levels, e.g. the black
border of ``retina.jpg``) are redrawn; the redraw depends only on the pixels, never on a model.

scikit-image's ``lfw_subset.npy`` faces are 25x25 pixels, smaller than the smallest benchmark size
(32), so they cannot give native-resolution patches and are not used.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from osma_bench.errors import OsmaError

MIN_PATCH_STD = 2.0
"""Crops with a pixel standard deviation below this (0-255 scale) are redrawn."""

_MAX_REDRAWS = 64


@dataclass(frozen=True)
class RealSource:
    """One shipped image file: which package ships it and where it lives in the package."""

    package: str
    relpath: str

    @property
    def name(self) -> str:
        return f"{self.package}:{self.relpath}"


KNOWN_DOMAINS: tuple[str, ...] = ("portraits", "science", "textures")
UNSEEN_DOMAINS: tuple[str, ...] = ("objects", "grayscale")
UNSEEN_REAL = "unseen_real"

DOMAINS: dict[str, tuple[RealSource, ...]] = {
    # People and animals, colour photographs.
    "portraits": (
        RealSource("skimage", "data/astronaut.png"),
        RealSource("skimage", "data/chelsea.png"),
        RealSource("skimage", "data/coffee.png"),
    ),
    # Scientific imaging: telescope, fundus camera, microscope (colour).
    "science": (
        RealSource("skimage", "data/hubble_deep_field.jpg"),
        RealSource("skimage", "data/retina.jpg"),
        RealSource("skimage", "data/ihc.png"),
    ),
    # Grey-level natural textures.
    "textures": (
        RealSource("skimage", "data/brick.png"),
        RealSource("skimage", "data/grass.png"),
        RealSource("skimage", "data/gravel.png"),
    ),
    # Colour photographs of objects and scenes (unseen-dataset domain).
    "objects": (
        RealSource("skimage", "data/rocket.jpg"),
        RealSource("skimage", "data/motorcycle_left.png"),
        RealSource("skimage", "data/motorcycle_right.png"),
        RealSource("sklearn", "datasets/images/china.jpg"),
    ),
    # Grey-level photographs (unseen-dataset domain).
    "grayscale": (
        RealSource("skimage", "data/camera.png"),
        RealSource("skimage", "data/moon.png"),
        RealSource("skimage", "data/coins.png"),
        RealSource("skimage", "data/clock_motion.png"),
    ),
    # Real photographs used only as unseen real test images.
    UNSEEN_REAL: (
        RealSource("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
        RealSource("sklearn", "datasets/images/flower.jpg"),
    ),
}


def package_root(package: str) -> Path:
    """The install folder of ``package`` (found without importing it)."""
    if package not in ("skimage", "sklearn", "matplotlib"):
        raise OsmaError(f"mini: unknown source package {package!r}")
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise OsmaError(f"mini: the package {package!r} is not installed (it ships the mini benchmark's photos)")
    return Path(spec.origin).resolve().parent


@dataclass
class LoadedImage:
    """A decoded source image (H, W, 3) uint8 with its provenance."""

    source: RealSource
    pixels: np.ndarray
    file_format: str
    file_sha256: str

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def load_source(source: RealSource) -> LoadedImage:
    """Decode one shipped file to RGB uint8 (grey levels are repeated over the three channels)."""
    path = package_root(source.package) / source.relpath
    if not path.is_file():
        raise OsmaError(
            f"mini: {path} is missing; the installed {source.package} does not ship {source.relpath} "
            "(reinstall the package; the mini benchmark never downloads files)"
        )
    data = path.read_bytes()
    with Image.open(path) as img:
        fmt = img.format or path.suffix.lstrip(".").upper()
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    return LoadedImage(source, rgb, fmt, hashlib.sha256(data).hexdigest())


def load_domain(domain: str) -> list[LoadedImage]:
    """All decoded images of one domain (see :data:`DOMAINS`)."""
    if domain not in DOMAINS:
        raise OsmaError(f"mini: unknown domain {domain!r}; known: {', '.join(DOMAINS)}")
    return [load_source(s) for s in DOMAINS[domain]]


@dataclass
class Crops:
    """A batch of patches with, for each, the image it came from and its top-left corner."""

    pixels: np.ndarray  # (N, size, size, 3) uint8
    image: np.ndarray  # (N,) index into the domain's image list
    top: np.ndarray  # (N,)
    left: np.ndarray  # (N,)


def random_crops(
    images: list[LoadedImage], n: int, size: int, rng: np.random.Generator, unique: bool = False
) -> Crops:
    """``n`` native-resolution ``size`` x ``size`` windows: image uniform, position uniform.

    Windows with a standard deviation below :data:`MIN_PATCH_STD` are redrawn (up to a bound, after
    which the last draw is kept), so flat borders do not dominate. With ``unique=True`` a window whose
    pixels equal an earlier one of this call is redrawn too (stored images must not repeat, or the
    same content would sit in two partitions).
    """
    for im in images:
        if im.height < size or im.width < size:
            raise OsmaError(
                f"mini: {im.source.name} is {im.width}x{im.height}, smaller than the {size}px patch size"
            )
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    which = np.empty(n, dtype=np.int64)
    tops = np.empty(n, dtype=np.int64)
    lefts = np.empty(n, dtype=np.int64)
    seen: set[bytes] = set()
    for i in range(n):
        while True:
            for _ in range(_MAX_REDRAWS):
                k = int(rng.integers(len(images)))
                im = images[k]
                y = int(rng.integers(im.height - size + 1))
                x = int(rng.integers(im.width - size + 1))
                patch = im.pixels[y : y + size, x : x + size]
                if patch.std() >= MIN_PATCH_STD:
                    break
            if not unique:
                break
            key = hashlib.sha256(np.ascontiguousarray(patch).tobytes()).digest()
            if key not in seen:
                seen.add(key)
                break
        out[i], which[i], tops[i], lefts[i] = patch, k, y, x
    return Crops(out, which, tops, lefts)


def describe_sources(size: int) -> list[dict]:
    """Card entries for every real source: package, file, domain, role, format, size, SHA-256, crop policy."""
    policy = (
        f"random {size}x{size} windows at native resolution (no resizing): source image uniform within "
        f"its domain, position uniform; windows with pixel std < {MIN_PATCH_STD:g} grey levels redrawn"
    )
    rows = []
    for domain, sources in DOMAINS.items():
        role = (
            "known domain (real class and known generators)"
            if domain in KNOWN_DOMAINS
            else "unseen-dataset domain (generators of the unseen-dataset group only)"
            if domain in UNSEEN_DOMAINS
            else "unseen real (closed-set test under real only)"
        )
        for src in sources:
            im = load_source(src)
            rows.append(
                {
                    "package": src.package,
                    "file": src.relpath,
                    "domain": domain,
                    "role": role,
                    "format": im.file_format,
                    "width": im.width,
                    "height": im.height,
                    "sha256": im.file_sha256,
                    "crop_policy": policy,
                }
            )
    return rows
