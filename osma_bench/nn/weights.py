"""Published pretrained weights, read as data: never through a pickle that can run code.

torchvision's ``Weights.get_state_dict`` ends in ``torch.load(weights_only=False)``, so a file placed
in torch's hub cache (where an offline user is told to put it) would be unpickled with full power.
Here the file is found (or downloaded once, as bytes) at ``<torch hub dir>/checkpoints/<file name>``,
its SHA-256 is checked against the hash prefix published in the file name (``resnet50-0676ba61.pth``)
when the name carries one, and it is read with ``torch.load(weights_only=True)``; the result must be
a mapping of names to tensors.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from osma_bench.errors import OsmaError
from osma_bench.io import sha256_file

#: torch.hub's convention: ``<name>-<first hex digits of the file's SHA-256>.<ext>``.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.[A-Za-z0-9]+$")
_DOWNLOAD_TIMEOUT_S = 30.0


def hub_cache_dir() -> Path:
    """Where torch keeps downloaded weights: ``<torch.hub.get_dir()>/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def published_hash_prefix(filename: str) -> str | None:
    """The SHA-256 prefix a file name publishes (``resnet18-f37072fd.pth`` -> ``f37072fd``), or None."""
    match = _HASH_IN_NAME.search(filename)
    return match.group(1) if match else None


def load_weights_file(path: Path, hash_prefix: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict read from ``path`` with ``weights_only=True``; OsmaError if it is anything else.

    ``hash_prefix``: the file's SHA-256 must start with it (checked before the file is parsed).
    """
    path = Path(path)
    if not path.is_file():
        raise OsmaError(f"{path}: weights file not found")
    if hash_prefix is not None:
        digest = sha256_file(path)
        if not digest.startswith(hash_prefix):
            raise OsmaError(f"{path}: SHA-256 {digest[:16]}... does not match the published prefix {hash_prefix} "
                            "in its name; the file is damaged or not the published one: delete it")
    state = safe_torch_load(path, "not a plain weights file")
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise OsmaError(f"{path}: not a state dict (expected a non-empty mapping of names to tensors)")
    return state


def safe_torch_load(path: Path, what: str, map_location: torch.device | str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; anything it refuses or cannot read is one OsmaError
    ``<path>: <what> (<one-line reason>)``. A pickle that would run code is refused, never executed."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise OsmaError(f"{path}: file not found") from None
    except Exception as exc:  # foreign or malicious pickle, truncated file
        raise OsmaError(f"{path}: {what} ({_load_reason(exc)})") from None


def _load_reason(exc: BaseException) -> str:
    """torch's multi-paragraph load errors (which suggest ``weights_only=False``) as one short line."""
    text = str(exc)
    for line in text.splitlines():
        if "WeightsUnpickler error:" in line:
            detail = line.split("WeightsUnpickler error:", 1)[1].split(". Please use", 1)[0].strip()
            return f"refused to unpickle: it holds objects other than tensors and plain values ({detail})"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return f"refused to unpickle: {type(exc).__name__}: {first[:200]}"


def published_weights(url: str, what: str) -> dict[str, torch.Tensor]:
    """The state dict published at ``url``: from the hub cache, else downloaded once into it.

    ``what`` names the weights in messages (e.g. ``ResNet50_Weights.IMAGENET1K_V1``).
    """
    filename = Path(urlparse(url).path).name
    cache = hub_cache_dir()
    target = cache / filename
    prefix = published_hash_prefix(filename)
    if not target.is_file():
        old_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            # Bytes only: download_url_to_file writes a temporary file, checks the prefix, renames.
            torch.hub.download_url_to_file(url, str(target), hash_prefix=prefix, progress=False)
        except Exception as exc:  # urllib/OS/hash errors: all mean "weights not available here"
            raise OsmaError(
                f"{what} weights ({filename}) are not available offline: not in the torch hub cache {cache} "
                f"and the download from {url} failed ({type(exc).__name__}: {exc}). Copy {filename} into "
                f"{cache}, or run with --set pretrained=false to train from scratch."
            ) from None
        finally:
            socket.setdefaulttimeout(old_timeout)
    return load_weights_file(target, prefix)
