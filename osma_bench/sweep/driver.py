"""Run a grid: skip complete runs, start the rest through an executor (at most its limit at once),
record how each ended; a failed run never stops the others.

On Ctrl-C (or SIGTERM, as Slurm sends to a cancelled driver) every running job is stopped and the
outcome so far is returned with ``interrupted`` set; the harness checkpoints each epoch, so rerunning
the same sweep resumes the stopped runs and starts the ones never begun.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from osma_bench.errors import OsmaError
from osma_bench.io import write_json
from osma_bench.sweep.command import CommandBuilder
from osma_bench.sweep.display import SweepProgress
from osma_bench.sweep.executor import Executor, Handle
from osma_bench.sweep.grid import GridPoint
from osma_bench.sweep.outcome import CANCELLED, FAILED, NOT_RUN, SKIPPED, Outcome, SweepReport, judge
from osma_bench.sweep.state import COMPLETE, MISSING, run_state


@contextmanager
def sweep_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two sweeps never drive the same runs at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OsmaError(f"{path}: another sweep is running on these results; wait for it or stop it") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()} {os.uname().nodename}\n")
        fh.flush()
        yield
    finally:
        fh.close()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt for the duration (main thread only)."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_sweep(points: list[GridPoint], command: CommandBuilder, executor: Executor,
              progress: SweepProgress, pending: Callable[[GridPoint], str | None] | None = None) -> SweepReport:
    """Drive ``points`` to completion; see the module docstring.

    ``pending(point)`` says what a complete run still lacks (e.g. its robustness pass), or None:
    such a run is started again (its command skips the finished training) and only counts as done
    once nothing is pending.
    """
    started_at = time.monotonic()
    outcomes: dict[GridPoint, Outcome] = {}
    todo: deque[tuple[GridPoint, bool]] = deque()
    for point in points:
        state = run_state(point.run_dir).state
        if state == COMPLETE and not (pending and pending(point)):
            outcomes[point] = Outcome(point, SKIPPED)
        else:
            todo.append((point, state != MISSING))
    limit = executor.max_parallel or max(1, len(todo))
    free_slots = list(range(limit))
    running: dict[int, tuple[GridPoint, Handle, float, bool]] = {}
    report = SweepReport()
    progress.begin(len(points), len(outcomes))
    try:
        with sigterm_as_interrupt():
            while todo or running:
                while todo and free_slots:
                    point, resumed = todo.popleft()
                    slot = free_slots.pop(0)
                    try:
                        handle = executor.start(point, command(point), slot)
                    except Exception as exc:  # e.g. sbatch refused the job: the others still go on
                        free_slots.insert(0, slot)
                        outcomes[point] = Outcome(point, FAILED, 0.0, None, f"could not start: {exc}", resumed)
                        progress.finished(outcomes[point])
                        continue
                    running[slot] = (point, handle, time.monotonic(), resumed)
                    progress.started(point)
                for slot, (point, handle, t0, resumed) in list(running.items()):
                    returncode = handle.poll()
                    if returncode is None:
                        progress.update(point, run_state(point.run_dir))
                        continue
                    del running[slot]
                    free_slots.append(slot)
                    outcomes[point] = judge(point, returncode, time.monotonic() - t0, handle.note, resumed)
                    missing = pending(point) if pending and outcomes[point].status != FAILED else None
                    if missing:
                        outcomes[point] = Outcome(point, FAILED, outcomes[point].seconds, returncode,
                                                  f"exited {returncode} but the run is not complete ({missing})",
                                                  resumed)
                    progress.finished(outcomes[point])
                if running:
                    time.sleep(executor.poll_s)
    except KeyboardInterrupt:
        report.interrupted = True
        for point, handle, t0, resumed in running.values():
            handle.cancel()
            outcomes[point] = Outcome(point, CANCELLED, time.monotonic() - t0, None, "sweep interrupted", resumed)
        for point, resumed in todo:
            outcomes[point] = Outcome(point, NOT_RUN, resumed=resumed)
    report.outcomes = [outcomes[p] for p in points]
    report.wall_s = time.monotonic() - started_at
    return report


def write_record(path: Path, report: SweepReport, info: dict) -> None:
    """Save the sweep's outcome (settings, counts, per-run status and time) as JSON, atomically."""
    write_json(path, {
        **info,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_s": round(report.wall_s, 3),
        "interrupted": report.interrupted,
        "counts": {s: report.count(s) for s in ("done", SKIPPED, FAILED, CANCELLED, NOT_RUN)},
        "runs": [o.as_dict() for o in report.outcomes],
    })
