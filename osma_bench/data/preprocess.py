"""Load one source image and preprocess it exactly as the POSE loader does.

POSE (ICTMCG/POSE, ``data/dataset.py``) opens each file with PIL, ``convert('RGB')``, centre-crops
non-square images to the short side with ``torchvision.transforms.CenterCrop`` and resizes with
``img.resize((size, size))``. For RGB images Pillow's default filter there is BICUBIC, so we pass
``Image.Resampling.BICUBIC`` explicitly (the same pixels). CenterCrop puts the crop's top-left
corner at ``int(round((side - short) / 2.0))``, Python rounding, which we reproduce.

Unlike POSE (which sets ``LOAD_TRUNCATED_IMAGES``) a truncated file is refused, not padded with
grey. Every refusal is an :class:`ImageProblem` whose message is the reason. This module imports
only PIL and numpy so that spawned build workers start fast.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold (MAX_IMAGE_PIXELS)
HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageProblem(Exception):
    """A source image that cannot be used; the message is the reason."""


@dataclass(frozen=True)
class PreprocessConfig:
    """How source images become stored pixels.

    Attributes:
        size: side of the stored square.
        normalize: ``None``, ``"png"`` or ``"jpeg:Q"``: re-encode every image the same way before
            preprocessing. ``png`` is lossless, so its pixels equal the source's (it only unifies
            the container); ``jpeg:Q`` gives every image the same JPEG artefacts.
        allow_upscale: enlarge images whose short side is below ``size`` (POSE does); otherwise
            refuse them.
        max_pixels: refuse images with more pixels (decompression bombs).
    """

    size: int = 128
    normalize: str | None = None
    allow_upscale: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS

    def card(self) -> dict:
        """The card's ``preprocessing`` section."""
        return {
            "convert": "RGB",
            "crop": "center-square",
            "crop_rounding": "torchvision CenterCrop: offset int(round((side - short) / 2))",
            "resize_filter": "BICUBIC",
            "resize": "PIL Image.resize((size, size)), Pillow's default for RGB",
            "normalize": self.normalize,
            "allow_upscale": self.allow_upscale,
            "truncated_images": "refused",
            "max_pixels": self.max_pixels,
        }


def parse_normalize(value: str | None) -> str | None:
    """Check a ``--normalize`` value: ``png`` or ``jpeg:Q`` with 1 <= Q <= 100 (or None)."""
    if value in (None, "", "none"):
        return None
    if value == "png":
        return "png"
    if value.startswith("jpeg:"):
        quality = value[5:]
        if quality.isdigit() and 1 <= int(quality) <= 100:
            return f"jpeg:{int(quality)}"
    raise ValueError(f"--normalize {value!r}: use 'png' or 'jpeg:Q' with Q from 1 to 100")


def center_crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The square crop box torchvision's CenterCrop takes from a width x height image."""
    short = min(width, height)
    top = int(round((height - short) / 2.0))
    left = int(round((width - short) / 2.0))
    return left, top, left + short, top + short


def preprocess_pil(img: Image.Image, size: int) -> np.ndarray:
    """RGB, centre square crop, bicubic resize to ``size``: uint8 (size, size, 3)."""
    img = img.convert("RGB")
    if img.width != img.height:
        img = img.crop(center_crop_box(img.width, img.height))
    img = img.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageProblem(f"decompression bomb refused ({exc})") from None
        except UnidentifiedImageError:
            raise ImageProblem("not an image file (PIL cannot identify it)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageProblem(f"corrupt image header ({exc})") from None
    if img.width * img.height > max_pixels:
        raise ImageProblem(
            f"decompression bomb refused: {img.width}x{img.height} = {img.width * img.height} pixels "
            f"exceeds the limit of {max_pixels}"
        )
    return img


def load_image(path: str | os.PathLike, cfg: PreprocessConfig) -> tuple[np.ndarray, dict]:
    """Read ``path`` and preprocess it; return ``(pixels, meta)`` or raise :class:`ImageProblem`.

    ``meta`` holds ``sha256`` (of the file's bytes), ``orig_format``, ``orig_width``,
    ``orig_height`` and ``mode``.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ImageProblem("file not found") from None
    except IsADirectoryError:
        raise ImageProblem("is a directory, not an image file") from None
    except OSError as exc:
        raise ImageProblem(f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageProblem("empty file (0 bytes)")
    img = _open(data, cfg.max_pixels)
    meta = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "orig_format": (img.format or "UNKNOWN")[:8],
        "orig_width": img.width,
        "orig_height": img.height,
        "mode": img.mode,
    }
    if img.mode in HIGH_BIT_MODES:
        raise ImageProblem(
            f"image mode {img.mode} (16/32-bit) refused: PIL's convert('RGB'), which the POSE loader uses, "
            "clips values above 255; convert it to 8-bit first"
        )
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageProblem(f"corrupt or truncated image data ({exc})") from None
    if min(img.width, img.height) < cfg.size and not cfg.allow_upscale:
        raise ImageProblem(
            f"image is {img.width}x{img.height}, smaller than the target size {cfg.size} "
            "(pass --allow-upscale to enlarge it as the POSE loader does, or --skip-bad)"
        )
    if cfg.normalize and cfg.normalize.startswith("jpeg:"):
        buffer = io.BytesIO()
        img.convert("RGB").save(buffer, format="JPEG", quality=int(cfg.normalize[5:]))
        img = Image.open(io.BytesIO(buffer.getvalue()))
    try:
        pixels = preprocess_pil(img, cfg.size)
    except (OSError, ValueError) as exc:
        raise ImageProblem(f"cannot convert image (mode {meta['mode']}): {exc}") from None
    return pixels, meta


def process_item(args: tuple[str, PreprocessConfig]) -> tuple[np.ndarray | None, dict | str]:
    """Worker entry point (picklable, spawn-safe): ``(pixels, meta)`` or ``(None, reason)``."""
    path, cfg = args
    try:
        return load_image(path, cfg)
    except ImageProblem as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted input is a bad file
        return None, f"cannot decode image ({type(exc).__name__}: {exc})"
