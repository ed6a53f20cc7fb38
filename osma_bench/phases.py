"""Progress of the long phases of a command (checksums, building, final evaluation), anywhere.

On a terminal a phase is a rich progress bar (a pulsing one when its size is unknown). Off a
terminal (a log file, a pipe, a Slurm job) rich draws nothing, so each phase prints plain lines
instead: one when it starts (for a phase without counts: once it has run ``START_AFTER_S``), one
every ``interval_s`` seconds while it runs (with its count when it has one) and one when it ends,
with the seconds it took::

    verifying dataset checksums ...
    verifying dataset checksums: done in 12.4 s
    training generators: 10/41 (31 s)

``PhaseProgress.update(stage, done, total)`` is the ``progress`` callback of the dataset builders;
``PhaseProgress.phase(name)`` wraps a step without counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: Off a terminal: seconds between two lines of a running phase.
INTERVAL_S = 30.0
#: Off a terminal: a phase without counts announces itself only when it takes longer than this,
#: so a quick phase (or one that fails at once, before its ``error:`` line) prints no start line.
START_AFTER_S = 2.0


class PhaseProgress:
    """Named phases shown as bars on a terminal and as plain lines elsewhere (use as a context manager)."""

    def __init__(self, console: Console | None = None, interval_s: float = INTERVAL_S,
                 terminal: bool | None = None, transient: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.terminal = self.console.is_terminal if terminal is None else terminal
        self.interval_s = interval_s
        self.bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=self.console, transient=transient,
                            disable=not self.terminal)
        self.tasks: dict[str, int] = {}
        self.started: dict[str, float] = {}
        self.last_line: dict[str, float] = {}
        self.finished: set[str] = set()

    def __enter__(self) -> PhaseProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            for stage in list(self.started):
                self._end(stage)
        self.bar.__exit__(exc_type, *exc)

    def _line(self, text: str) -> None:
        if not self.terminal:
            self.console.print(text, soft_wrap=True, highlight=False)

    def _end(self, stage: str) -> None:
        if stage in self.finished:
            return
        self.finished.add(stage)
        self._line(f"{stage}: done in {time.perf_counter() - self.started[stage]:.1f} s")

    def update(self, stage: str, done: int, total: int | None) -> None:
        """Phase ``stage`` has done ``done`` of ``total`` steps (a new stage ends the previous ones)."""
        now = time.perf_counter()
        new = stage not in self.tasks
        if new:
            for other in self.started:
                self._end(other)
            self.tasks[stage] = self.bar.add_task(stage, total=total)
            self.started[stage] = self.last_line[stage] = now
            self._line(f"{stage} ..." if not total else f"{stage}: {done}/{total} ...")
        self.bar.update(self.tasks[stage], completed=done, total=total)
        if total and done >= total:
            self._end(stage)
        elif not new and now - self.last_line[stage] >= self.interval_s and stage not in self.finished:
            self.last_line[stage] = now
            count = f"{done}/{total} " if total else ""
            self._line(f"{stage}: {count}({now - self.started[stage]:.0f} s)")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """A step without counts: a pulsing bar on a terminal; elsewhere a start line once it has taken
        ``START_AFTER_S`` and an end line with its duration."""
        if self.terminal:
            self.update(name, 0, None)
        else:
            for other in self.started:
                self._end(other)
            self.tasks[name] = self.bar.add_task(name, total=None)
            self.started[name] = self.last_line[name] = time.perf_counter()
        timer = None
        if not self.terminal:
            if START_AFTER_S <= 0:
                self._line(f"{name} ...")
            else:
                timer = threading.Timer(START_AFTER_S, self._line, [f"{name} ..."])
                timer.daemon = True
                timer.start()
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
        self.bar.update(self.tasks[name], total=1, completed=1)
        self._end(name)


@contextmanager
def phase(console: Console, name: str, enabled: bool = True, bar: bool = True) -> Iterator[None]:
    """One step without counts, shown on ``console`` (nothing when not ``enabled``; plain lines
    instead of a bar when not ``bar``, e.g. ``--no-progress``)."""
    if not enabled:
        yield
        return
    with PhaseProgress(console, terminal=console.is_terminal and bar) as progress, progress.phase(name):
        yield
