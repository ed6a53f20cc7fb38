"""What the sweep driver needs from an executor: start a run's command, poll it, cancel it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from osma_bench.sweep.grid import GridPoint


class Handle(ABC):
    """One started run."""

    #: extra text about a failure that the run's own log cannot hold (e.g. a Slurm job killed).
    note: str | None = None

    @abstractmethod
    def poll(self) -> int | None:
        """The exit status once finished (a negative number: killed or lost), else None."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop the run (it stays resumable: the harness checkpoints every epoch)."""


class Executor(ABC):
    """Starts runs; at most ``max_parallel`` are in flight at once (None: no limit)."""

    name: str = "executor"
    max_parallel: int | None = None
    #: seconds between polls of the running jobs
    poll_s: float = 0.5

    @abstractmethod
    def start(self, point: GridPoint, argv: Sequence[str], slot: int) -> Handle:
        """Start ``argv`` for ``point``; ``slot`` in [0, max_parallel) is free for it (GPU pinning)."""

    def describe(self) -> str:
        """One line for the sweep's header."""
        limit = "no limit" if self.max_parallel is None else f"at most {self.max_parallel} at once"
        return f"{self.name} ({limit})"
