"""``--executor slurm``: each run is one Slurm job, submitted through submitit.

The job runs the same ``osma-bench run ... --resume`` command as the local executor (output in
the same sweep log), so a job that hits its time limit or is pre-empted is requeued by submitit
(:class:`RunCommand` is checkpointable) and continues from its last finished epoch. submitit's
own files (job scripts, its stdout/stderr) go to ``<logs>/submitit/<job id>/``. The same code
path runs on this machine with ``cluster="local"`` (submitit's local executor), which the tests use.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import submitit

from osma_bench.errors import OsmaError
from osma_bench.sweep.executor import Executor, Handle
from osma_bench.sweep.grid import GridPoint
from osma_bench.sweep.process import execute_command

_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_slurm_time(text: str) -> int:
    """A Slurm time limit (``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``) in whole minutes."""
    m = _TIME.match(str(text).strip())
    if not m:
        raise OsmaError(f"--slurm-time: {text!r} is not a Slurm time (minutes, H:MM:SS or D-HH:MM:SS)")
    days, a, b, c = (int(g) if g is not None else None for g in m.groups())
    if days is not None:  # D-H, D-H:M, D-H:M:S
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # H:M:S
        seconds = a * 3600 + b * 60 + c
    else:  # M or M:S
        seconds = a * 60 + (b or 0)
    minutes = -(-seconds // 60)
    if minutes < 1:
        raise OsmaError(f"--slurm-time: {text!r} is shorter than a minute")
    return minutes


def parse_slurm_params(items: Sequence[str] | None) -> dict[str, str]:
    """``["qos=high", "constraint=a100"]`` -> extra ``#SBATCH`` options."""
    params: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OsmaError(f"--slurm-param expects key=value (an sbatch option), got {item!r}")
        params[key.strip().replace("-", "_")] = value.strip()
    return params


class RunCommand(submitit.helpers.Checkpointable):
    """The callable a Slurm job runs: one ``osma-bench run`` command; requeued as is on timeout."""

    def __call__(self, argv: Sequence[str], log: str, env: Mapping[str, str]) -> int:
        return execute_command(argv, log, env)


class SubmititHandle(Handle):
    """A submitit job whose result is the command's exit status."""

    def __init__(self, job: submitit.Job) -> None:
        self.job = job
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is not None or not self.job.done():
            return self.returncode
        try:
            self.returncode = int(self.job.result())
        except Exception as exc:  # the job died outside the command: time limit, node failure, cancel
            text = str(exc).strip().splitlines()
            self.note = f"submitit job {self.job.job_id}: {type(exc).__name__}: {' | '.join(text[-3:])[:500]}"
            self.returncode = -1
        return self.returncode

    def cancel(self) -> None:
        if self.returncode is None:
            self.job.cancel(check=False)
            self.returncode = -1


class SubmititExecutor(Executor):
    """Submit each run as a job (``cluster="slurm"``; ``"local"`` runs the same path on this machine)."""

    def __init__(self, folder: Path, cluster: str = "slurm", max_parallel: int | None = None,
                 partition: str | None = None, time_min: int | None = None, gpus: int | None = None,
                 cpus: int | None = None, mem_gb: float | None = None, account: str | None = None,
                 extra: Mapping[str, str] | None = None, poll_s: float | None = None) -> None:
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise OsmaError("--executor slurm: sbatch is not on PATH; run the sweep on a Slurm login node "
                            "(or use --executor local)")
        if max_parallel is not None and max_parallel < 1:
            raise OsmaError(f"--jobs must be at least 1 (or 0 for no limit), got {max_parallel}")
        self.name = "slurm" if cluster == "slurm" else f"submitit-{cluster}"
        self.max_parallel = max_parallel
        self.poll_s = poll_s if poll_s is not None else (10.0 if cluster == "slurm" else 0.5)
        self.cpus = cpus
        self.executor = submitit.AutoExecutor(folder=Path(folder) / "%j", cluster=cluster)
        params: dict[str, Any] = {"timeout_min": time_min, "gpus_per_node": gpus, "cpus_per_task": cpus,
                                  "mem_gb": mem_gb, "slurm_partition": partition, "slurm_account": account}
        if extra:
            params["slurm_additional_parameters"] = dict(extra)
        params = {k: v for k, v in params.items() if v is not None}
        try:
            self.executor.update_parameters(**params)
        except (NameError, AssertionError, ValueError) as exc:
            raise OsmaError(f"slurm parameters rejected by submitit: {exc}") from None
        self.summary = ", ".join(f"{k.removeprefix('slurm_')}={v}" for k, v in params.items()) or "defaults"

    def start(self, point: GridPoint, argv: Sequence[str], slot: int) -> Handle:
        env = {"OMP_NUM_THREADS": str(self.cpus), "MKL_NUM_THREADS": str(self.cpus)} if self.cpus else {}
        self.executor.update_parameters(name=f"osma-{point.method}-s{point.split}-{point.seed}")
        job = self.executor.submit(RunCommand(), list(argv), str(point.log), env)
        return SubmititHandle(job)

    def describe(self) -> str:
        limit = "all jobs at once" if self.max_parallel is None else f"at most {self.max_parallel} at once"
        return f"{self.name} ({limit}; {self.summary})"
