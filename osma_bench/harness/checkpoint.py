"""Checkpoints: tensors and plain values only, written atomically, read with ``weights_only=True``.

``checkpoint.pt`` is the state after the last complete epoch (method state, random states,
history, best epoch so far); ``checkpoint_best.pt`` holds the method state of the best epoch by
validation accuracy. A process killed mid-epoch leaves both as they were after the previous epoch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from osma_bench.errors import OsmaError
from osma_bench.harness.config import RUNTIME_KEYS
from osma_bench.io import atomic_path, disk_full_error, ensure_room
from osma_bench.nn.weights import safe_torch_load
from osma_bench.validate import Fields

FORMAT = 1
LAST = "checkpoint.pt"
BEST = "checkpoint_best.pt"


def save(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename onto ``path`` (a full disk: OsmaError, and the
    previous checkpoint stays)."""
    needed = _tensor_bytes(payload) + 2**20
    ensure_room(path.parent, needed)  # torch's zip writer reports a short write without an errno
    try:
        with atomic_path(path) as tmp:
            torch.save({"format": FORMAT, **payload}, tmp)
    except RuntimeError:
        if shutil.disk_usage(path.parent).free < needed:
            raise disk_full_error(path, needed, f"{path.name} is as it was") from None
        raise


def _tensor_bytes(value: Any) -> int:
    """Bytes of every tensor inside ``value`` (dicts, lists and tuples are walked)."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def load(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (no pickle of arbitrary objects)."""
    if not Path(path).is_file():
        raise OsmaError(f"{path}: checkpoint not found")
    payload = safe_torch_load(path, "not a readable checkpoint", map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise OsmaError(f"{path}: not an osma-bench checkpoint (format {FORMAT})")
    f = Fields(path)
    f.integer(f.key(payload, "epoch"), "epoch", 0)
    state = f.mapping(f.key(payload, "state"), "state")
    if not state:
        raise f.fail("state", "the method's state (a non-empty mapping)", show=False)
    if "rng" in payload:  # checkpoint.pt (the resume point) carries these; checkpoint_best.pt does not
        f.mapping(payload["rng"], "rng")
        f.seq(f.key(payload, "history"), "history")
        if payload.get("best") is not None:
            f.integer(f.key(payload["best"], "epoch", "best"), "best.epoch", 0)
        for key in ("fingerprint", "method", "dataset_sha256"):
            f.string(f.key(payload, key), key)
    return payload


def restore(path: Path, what: str, apply, value: Any) -> None:
    """``apply(value)`` (a method's ``load_state_dict``, ``set_rng_state``); what it raises for a
    damaged or foreign value becomes one OsmaError naming ``path`` and ``what``."""
    try:
        apply(value)
    except OsmaError:
        raise
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise OsmaError(f"{path}: field {what}: does not fit this run ({first}); rerun with --overwrite") from None


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
