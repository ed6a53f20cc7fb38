"""``--executor local``: runs as parallel subprocesses on this machine.

Each job gets ``threads`` CPU threads (default: usable cores // jobs, at least 1) through
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` (torch reads them at start), so parallel jobs do not
oversubscribe the cores. With ``gpus`` (e.g. ``[0, 1]``) job slot *i* sees only GPU
``gpus[i % len(gpus)]`` through ``CUDA_VISIBLE_DEVICES``. The thread count is deliberately not
passed as ``--set num_threads``: that key is part of the run's configuration, and a rerun with
another ``--jobs`` could then not resume.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import IO

from osma_bench.errors import OsmaError
from osma_bench.sweep.executor import Executor, Handle
from osma_bench.sweep.grid import GridPoint
from osma_bench.sweep.process import close_log, start_process, stop_process

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class LocalHandle(Handle):
    """A subprocess and its open log."""

    def __init__(self, proc: subprocess.Popen, log: IO[str]) -> None:
        self.proc, self.log = proc, log
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            close_log(self.log, self.returncode)
        return self.returncode

    def cancel(self) -> None:
        if self.returncode is None:
            self.returncode = stop_process(self.proc)
            close_log(self.log, self.returncode)


class LocalExecutor(Executor):
    """At most ``jobs`` runs at once on this machine."""

    name = "local"

    def __init__(self, jobs: int = 1, threads: int | None = None, gpus: Sequence[int] | None = None,
                 poll_s: float = 0.5) -> None:
        if jobs < 1:
            raise OsmaError(f"--jobs must be at least 1 for the local executor, got {jobs}")
        if threads is not None and threads < 1:
            raise OsmaError(f"--threads must be at least 1, got {threads}")
        self.max_parallel = jobs
        self.threads = threads if threads is not None else max(1, usable_cores() // jobs)
        self.gpus = list(gpus or [])
        self.poll_s = poll_s

    def env(self, slot: int) -> dict[str, str]:
        """Environment additions for the job in ``slot``."""
        env = {name: str(self.threads) for name in THREAD_VARIABLES}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(self.gpus[slot % len(self.gpus)])
        return env

    def start(self, point: GridPoint, argv: Sequence[str], slot: int) -> Handle:
        proc, log = start_process(argv, point.log, self.env(slot))
        return LocalHandle(proc, log)

    def describe(self) -> str:
        gpus = f", GPUs {','.join(map(str, self.gpus))}" if self.gpus else ""
        return f"local: {self.max_parallel} job(s) at once, {self.threads} CPU thread(s) each{gpus}"
