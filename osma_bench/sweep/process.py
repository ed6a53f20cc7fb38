"""Start one run's process with its output captured in the sweep log (shared by every executor).

This module imports nothing heavy: Slurm jobs unpickle a reference to :func:`execute_command`
and should start fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO


def open_log(log: Path, argv: Sequence[str]) -> IO[str]:
    """Open ``log`` for appending (attempts accumulate) and write a header naming the command."""
    from osma_bench.sweep.command import format_argv

    Path(log).parent.mkdir(parents=True, exist_ok=True)
    fh = open(log, "a", encoding="utf-8")
    fh.write(f"===== {time.strftime('%Y-%m-%d %H:%M:%S')} on {os.uname().nodename}: {format_argv(argv)}\n")
    fh.flush()
    return fh


def child_env(updates: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus ``updates``; unbuffered Python so logs are live."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in updates.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


#: Linux ``prctl`` option that asks the kernel to signal a process when its parent dies.
PR_SET_PDEATHSIG = 1


def _child_setup(driver_pid: int):
    """What the child runs before exec: SIGINT back to its default action (a driver started in the
    background, ``nohup osma-bench sweep ... &``, ignores SIGINT, and ignored signals are inherited;
    the job must still stop and mark its run interrupted when the driver interrupts it), and, on
    Linux, SIGINT from the kernel when the driver dies (even by SIGKILL), so no job goes on writing
    while a rerun of the sweep starts. Elsewhere there is no parent-death signal: a job of a killed
    driver runs to its end, and the rerun is refused by the run directory's lock meanwhile."""

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        set_parent_death_signal(signal.SIGINT)
        if os.getppid() != driver_pid:  # the driver died before the request took effect
            os._exit(1)

    return setup


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def start_process(argv: Sequence[str], log: Path, env: Mapping[str, str]) -> tuple[subprocess.Popen, IO[str]]:
    """Start ``argv`` in its own session (process group) with stdout and stderr going to ``log``;
    it is interrupted when this process dies (Linux)."""
    fh = open_log(log, argv)
    try:
        proc = subprocess.Popen(list(argv), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=child_env(env), start_new_session=True,
                                preexec_fn=_child_setup(os.getpid()))
    except OSError as exc:
        fh.write(f"could not start: {exc}\n")
        fh.close()
        raise
    return proc, fh


def close_log(fh: IO[str], returncode: int) -> None:
    """Write the exit status and close the log."""
    try:
        fh.write(f"===== exit status {returncode}\n")
    finally:
        fh.close()


def stop_process(proc: subprocess.Popen, grace_s: float = 30.0) -> int:
    """Interrupt ``proc``'s process group (the harness then marks its run interrupted), kill it after
    ``grace_s`` seconds if it is still there; return its exit status."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.wait()


def execute_command(argv: Sequence[str], log: str, env: Mapping[str, str]) -> int:
    """Run ``argv`` to the end with output in ``log``; return its exit status (used inside Slurm jobs)."""
    proc, fh = start_process(argv, Path(log), env)
    try:
        returncode = proc.wait()
    except BaseException:  # the job is being stopped (Slurm timeout, pre-emption, cancel)
        close_log(fh, stop_process(proc))
        raise
    close_log(fh, returncode)
    return returncode
