"""What tune reads of a run: its run.json only (validation accuracy, training time, status).

Never metrics.json or scores.h5: the choice must not see test data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osma_bench.errors import OsmaError
from osma_bench.io import read_json

RUN_JSON = "run.json"


@dataclass(frozen=True)
class RunSummary:
    """One run as tune sees it."""

    status: str
    epochs: int
    epochs_completed: int
    train_s: float
    val_accuracy: float | None
    selected_epoch: int | None


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The run's run.json, or None while it does not exist yet."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        return None
    record = read_json(path)  # written atomically by the run: never half a file
    if not isinstance(record, dict):
        raise OsmaError(f"{path}: not a run record")
    return record


def selected_val_accuracy(record: dict[str, Any]) -> float | None:
    """Known-class validation accuracy of the model the run kept.

    A method that changes its model after training on validation data (e.g. PRNU's denoiser grid)
    reports the final figure as ``method_record.val_accuracy``; otherwise it is the validation
    accuracy of the selected epoch (the best one under ``select_on: val_accuracy``, the last under
    ``last``). None while the run is not complete.
    """
    if record.get("status") != "complete":
        return None
    final = (record.get("method_record") or {}).get("val_accuracy")
    if final is not None:
        return float(final)
    history = record.get("history") or []
    selected = record.get("selected_epoch")
    if selected is None or not 0 <= int(selected) < len(history):
        return None
    return float(history[int(selected)]["val_accuracy"])


def summarise(record: dict[str, Any]) -> RunSummary:
    """A :class:`RunSummary` of a run.json record (running, failed or complete)."""
    history = record.get("history") or []
    selected = record.get("selected_epoch")
    return RunSummary(
        status=str(record.get("status", "unknown")),
        epochs=int((record.get("config") or {}).get("epochs", len(history) or 1)),
        epochs_completed=len(history),
        train_s=float(sum(float(h.get("train_s", 0.0)) for h in history)),
        val_accuracy=selected_val_accuracy(record),
        selected_epoch=None if selected is None else int(selected),
    )


def projected_train_s(summary: RunSummary) -> float | None:
    """The run's whole training time projected from its completed epochs (None before the first)."""
    if summary.epochs_completed == 0:
        return None
    return summary.train_s / summary.epochs_completed * max(summary.epochs, summary.epochs_completed)
