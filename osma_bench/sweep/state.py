"""What is already on disk for one run directory (docs/CONTRACTS.md section 4).

A run is *complete* when ``run.json`` says ``status: complete`` and ``metrics.json`` exists;
anything else that left files behind is *partial* (interrupted, failed, or still being written)
and is resumed with ``osma-bench run --resume``; an empty or absent folder is *missing*.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osma_bench.results import is_complete, read_run_record

COMPLETE, PARTIAL, MISSING = "complete", "partial", "missing"


@dataclass(frozen=True)
class RunState:
    """The state of one run folder, with what ``run.json`` says about it (empty when unreadable)."""

    state: str
    record: dict[str, Any]

    @property
    def profile(self) -> str | None:
        value = self.record.get("profile")
        return str(value) if value is not None else None

    @property
    def progress(self) -> tuple[int, int | None]:
        """(epochs completed, epochs planned) as far as ``run.json`` tells; (0, None) before it exists."""
        done = self.record.get("epochs_completed", 0)
        total = (self.record.get("config") or {}).get("epochs")
        return (int(done) if isinstance(done, int) else 0), (int(total) if isinstance(total, int) else None)

    @property
    def error(self) -> str | None:
        """The error a failed run recorded, if any."""
        value = self.record.get("error")
        return str(value) if value else None


def read_record(run_dir: Path) -> dict[str, Any]:
    """``run.json`` as a dict; ``{}`` when absent, unreadable or not an object (the run is then redone)."""
    return read_run_record(run_dir)


def run_state(run_dir: Path) -> RunState:
    """Classify ``run_dir`` as complete, partial or missing."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    if is_complete(run_dir, record):
        return RunState(COMPLETE, record)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        return RunState(PARTIAL, record)
    return RunState(MISSING, record)
