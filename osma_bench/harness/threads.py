"""How many CPU threads torch uses for a run: the ``num_threads`` policy.

``num_threads`` > 0 is used as given. ``num_threads`` = 0 (the default) is the *auto* policy:

1. ``OMP_NUM_THREADS`` set in the environment (``osma-bench sweep`` sets it per job, ``torchrun``
   sets it to 1 with several processes, a cluster's job script may set it): that count.
2. Otherwise one thread per CPU core that is free now: the cores this process may use
   (affinity, capped by a cgroup CPU quota and shared by a ``torchrun`` node's processes) minus the
   cores other processes kept busy during a short sample of ``/proc/stat``; at least 1.

Why not torch's own default (one thread per core): on a shared machine an OpenMP parallel region
ends only when its slowest thread does, and a thread whose core is taken by another job waits for
the scheduler's next time slice at every one of the many small parallel regions of a training
step, while the threads that finished spin (OpenMP's default wait policy) and take CPU time from
the very thread they wait for. On the 2-core development machine this made torch's default
2.2-20x slower than one thread under load (figures: ``benchmarks/bench_threads.py`` and README
"Performance figures").

The command line also starts OpenMP with ``OMP_WAIT_POLICY=PASSIVE`` (``prefer_passive_wait``,
before torch is imported; a value already set wins): waiting threads sleep instead of spinning,
which bounds the loss when the load rises after the thread count was chosen.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

#: Seconds of ``/proc/stat`` sampling to see how busy the cores are.
SAMPLE_S = 0.25
#: A core counts as free when other processes used less than this fraction of it during the sample.
FREE_BELOW = 0.5


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


def read_cpu_times(path: str = "/proc/stat") -> dict[int, tuple[int, int]] | None:
    """``{cpu id: (busy jiffies, total jiffies)}`` from ``/proc/stat``; None where it cannot be read."""
    try:
        with open(path) as fh:
            lines = fh.readlines()
    except OSError:
        return None
    times = {}
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit():
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        times[int(name[3:])] = (sum(values) - idle, sum(values))
    return times or None


def busy_cores(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], cpus: list[int]) -> float:
    """How many of ``cpus`` were busy between two ``read_cpu_times`` samples (0.0 ... len(cpus))."""
    busy = 0.0
    for cpu in cpus:
        if cpu not in before or cpu not in after:
            continue
        total = after[cpu][1] - before[cpu][1]
        if total > 0:
            busy += min(1.0, max(0.0, (after[cpu][0] - before[cpu][0]) / total))
    return busy


def sample_busy_cores(cpus: list[int], seconds: float = SAMPLE_S) -> float | None:
    """Cores among ``cpus`` kept busy by other processes during ``seconds`` (this one sleeps meanwhile)."""
    before = read_cpu_times()
    if before is None:
        return None
    time.sleep(seconds)
    after = read_cpu_times()
    return None if after is None else busy_cores(before, after, cpus)


def free_core_threads(cores: float, busy: float | None, share: int = 1) -> int:
    """Threads for one of ``share`` processes on ``cores`` usable cores of which ``busy`` are taken by
    others: one per free core (a core counts when at least half of it is free), at least 1."""
    free = (cores - (busy or 0.0)) / max(1, share)
    return max(1, min(int(cores), math.floor(free + (1.0 - FREE_BELOW))))


def _positive_int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def choose_threads(requested: int, env: dict[str, str] | None = None, sample_s: float = SAMPLE_S) -> ThreadChoice:
    """The thread count for ``num_threads = requested`` (see the module docstring for the policy)."""
    if requested > 0:
        return ThreadChoice(int(requested), "num_threads")
    env = dict(os.environ) if env is None else env
    from_env = _positive_int(env.get("OMP_NUM_THREADS"))
    if from_env is not None:
        return ThreadChoice(from_env, "OMP_NUM_THREADS")
    cpu_ids = usable_cpus()
    cores = float(len(cpu_ids))
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = max(1.0, min(cores, float(math.floor(quota))))
    share = _positive_int(env.get("LOCAL_WORLD_SIZE")) or 1  # processes of one torchrun node share the cores
    busy = sample_busy_cores(cpu_ids, sample_s) if sample_s > 0 else None
    threads = free_core_threads(cores, busy, share)
    load = "load unknown" if busy is None else f"{busy:.1f} busy"
    return ThreadChoice(threads, f"auto: {int(cores)} usable core(s), {load}"
                        + (f", shared by {share} processes" if share > 1 else ""))


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
