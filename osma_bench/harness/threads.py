"""How many CPU threads torch uses for a run, and how its OpenMP threads wait: the ``num_threads`` policy.

``num_threads`` > 0 is used as given. ``num_threads`` = 0 (the default) is the *auto* policy:

1. ``OMP_NUM_THREADS`` set in the environment (``osma-bench sweep`` sets it per job, ``torchrun``
   sets it to 1 with several processes, a cluster's job script may set it): that count.
2. Otherwise one thread per usable core: the cores this process may run on (affinity), capped by
   a cgroup CPU quota (containers, Slurm) and shared by the processes of a ``torchrun`` node.

And the command line starts OpenMP with ``OMP_WAIT_POLICY=PASSIVE`` (``prefer_passive_wait``,
before torch is imported; a value already set wins): a thread that finishes its share of a
parallel region sleeps instead of spinning.

Why: an OpenMP parallel region ends only when its slowest thread does. With OpenMP's default
(active) waiting, the threads that finished first spin, and on a busy machine they take CPU time
from the very thread they wait for and from the other jobs; a training step has hundreds of small
regions, so torch's default lost 4-8x on the loaded 2-core development machine. Fewer threads
were not the answer: with the spinning gone, one thread per core was the fastest or within the
noise of it under 0-4 competing processes (a process's fair share of a busy CPU grows with its
runnable threads), while one thread was up to 2.7x slower. Measured by
``benchmarks/bench_threads.py``; figures in README, "Performance figures".
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count chosen for torch, and why (for the run's log)."""

    threads: int
    reason: str


def usable_cpus() -> list[int]:
    """The CPU ids this process may run on (all of them where affinity is unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def cgroup_cpu_limit(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """The cgroup v2 CPU quota in cores (``"200000 100000"`` -> 2.0), None when unlimited or unknown."""
    try:
        with open(path) as fh:
            quota, _, period = fh.read().strip().partition(" ")
        if quota == "max":
            return None
        return int(quota) / int(period or 100000)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def usable_cores(env: dict[str, str] | None = None) -> int:
    """Cores for this process: its CPU affinity, capped by a cgroup quota, divided among the
    ``LOCAL_WORLD_SIZE`` processes of a torchrun node; at least 1."""
    env = dict(os.environ) if env is None else env
    cores = float(len(usable_cpus()))
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, float(math.floor(quota)))
    share = _positive_int(env.get("LOCAL_WORLD_SIZE")) or 1
    return max(1, math.floor(cores / share))


def _positive_int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def choose_threads(requested: int, env: dict[str, str] | None = None) -> ThreadChoice:
    """The thread count for ``num_threads = requested`` (see the module docstring for the policy)."""
    if requested > 0:
        return ThreadChoice(int(requested), "num_threads")
    env = dict(os.environ) if env is None else env
    from_env = _positive_int(env.get("OMP_NUM_THREADS"))
    if from_env is not None:
        return ThreadChoice(from_env, "OMP_NUM_THREADS")
    return ThreadChoice(usable_cores(env), "auto: one per usable core")


def prefer_passive_wait(env: dict[str, str] | None = None) -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless it is set already; only effective before torch (and its
    OpenMP runtime) is loaded, so the command line calls it first (child processes inherit it)."""
    env = os.environ if env is None else env
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def apply_threads(requested: int) -> ThreadChoice:
    """Choose the thread count for ``num_threads = requested`` and set it in torch."""
    import torch

    choice = choose_threads(requested)
    torch.set_num_threads(choice.threads)
    return choice
