"""Choose the torch device of a run: ``cpu``, ``cuda`` (or ``cuda:N``) or ``auto``."""

from __future__ import annotations

import torch

from osma_bench.errors import OsmaError


def select_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; a CUDA request without CUDA is an OsmaError."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise OsmaError(
                f"--device {name}: CUDA is not available on this machine (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda or 'none'}); use --device cpu or auto"
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise OsmaError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return device
    raise OsmaError(f"--device {name!r}: choose cpu, cuda, cuda:N or auto")


def describe_device(device: torch.device) -> str:
    """A human-readable name of the device for run.json."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
