"""Where a run's numbers come from: code version, git state, libraries, machine and threads.

Recorded in every ``run.json`` under ``provenance`` so that the report can flag results made from a
dirty tree or pooled over several code versions (docs/CONTRACTS.md, section 4).
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

import osma_bench


def git_state(root: Path | None = None) -> dict[str, Any]:
    """``{"commit": full hash or None, "dirty": bool or None}`` of the source tree (None outside a checkout).

    Dirty means tracked files differ from the commit (untracked files are ignored: results folders
    and datasets live in the checkout without changing the code).
    """
    root = root or Path(osma_bench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=False)
        if commit.returncode != 0 or not commit.stdout.strip():
            return {"commit": None, "dirty": None}
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"commit": commit.stdout.strip(), "dirty": dirty}


def code_version(state: dict[str, Any] | None = None) -> str:
    """``<package version>+g<short commit>[.dirty]``, or the package version outside a checkout."""
    state = state if state is not None else git_state()
    if not state.get("commit"):
        return osma_bench.__version__
    return f"{osma_bench.__version__}+g{state['commit'][:7]}{'.dirty' if state.get('dirty') else ''}"


def collect(device: torch.device | str, threads: int | None = None) -> dict[str, Any]:
    """The provenance block of run.json."""
    state = git_state()
    return {
        "package_version": osma_bench.__version__,
        "code_version": code_version(state),
        "git_commit": state["commit"],
        "git_dirty": state["dirty"],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": int(threads if threads is not None else torch.get_num_threads()),
    }
