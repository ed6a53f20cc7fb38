"""Checkpoints: tensors and plain values only, written atomically, read with ``weights_only=True``.

``checkpoint.pt`` is the state after the last complete epoch (method state, random states,
history, best epoch so far); ``checkpoint_best.pt`` holds the method state of the best epoch by
validation accuracy. A process killed mid-epoch leaves both as they were after the previous epoch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from osma_bench.errors import OsmaError
from osma_bench.harness.config import RUNTIME_KEYS
from osma_bench.io import atomic_path

FORMAT = 1
LAST = "checkpoint.pt"
BEST = "checkpoint_best.pt"


def save(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename onto ``path``."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)


def load(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (no pickle of arbitrary objects)."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise OsmaError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # corrupt or foreign file: a user-facing problem, not a crash
        raise OsmaError(f"{path}: not a readable checkpoint ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise OsmaError(f"{path}: not an osma-bench checkpoint (format {FORMAT})")
    return payload


def config_fingerprint(config: dict[str, Any]) -> str:
    """A canonical text of a run's identity settings, stored in checkpoints to refuse a mismatched
    resume (runtime keys, ``RUNTIME_KEYS``, are left out: threads may change on resume)."""
    kept = {k: v for k, v in config.items() if k not in RUNTIME_KEYS}
    return json.dumps(kept, sort_keys=True, default=str)


def fingerprint_values(fingerprint: str) -> dict[str, Any]:
    """The settings a stored fingerprint was made from (``{}`` when it is not readable JSON)."""
    try:
        values = json.loads(fingerprint)
    except (TypeError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}
