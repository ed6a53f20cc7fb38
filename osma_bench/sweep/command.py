"""The command line each grid point runs: ``osma-bench run ... --resume`` in a fresh Python process.

A separate process per run isolates failures (a crash, an out-of-memory kill) and releases all
memory between runs. ``--resume`` makes the same command right for a new run and for one an
earlier sweep left half-done. The sweep verifies the dataset once up front, so runs get
``--no-verify``. With ``--robustness SPEC`` the run command also scores the finished run on
perturbed test images (skipped when its ``robustness.json`` of that spec exists).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from osma_bench.sweep.grid import GridPoint

#: Turns a grid point into the argv of the process that runs it (tests inject their own).
CommandBuilder = Callable[[GridPoint], list[str]]


@dataclass(frozen=True)
class RunSettings:
    """What every run of a sweep shares, passed through to ``osma-bench run``."""

    data: Path
    profile: str
    out: Path
    device: str = "auto"
    epochs: int | None = None
    overrides: tuple[str, ...] = ()
    #: A named change of settings shared by every run (``--variant``): its own run folders.
    variant: str | None = None
    #: Processes per run (> 1: the run starts under ``torchrun --standalone``, one node).
    processes: int = 1
    #: A robustness spec (canonical text): each run is then scored on perturbed test images too.
    robustness: str | None = None

    def command(self, point: GridPoint) -> list[str]:
        """The argv of ``osma-bench run`` for ``point`` (absolute paths: jobs may start elsewhere)."""
        launcher = [sys.executable]
        if self.processes > 1:
            launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(self.processes)]
        argv = [*launcher, "-m", "osma_bench.cli", "run",
                "--method", point.method, "--data", str(Path(self.data).resolve()),
                "--split", str(point.split), "--seed", str(point.seed), "--profile", self.profile,
                "--device", self.device, "--out", str(Path(self.out).resolve()),
                "--resume", "--no-progress", "--no-verify"]
        if self.epochs is not None:
            argv += ["--epochs", str(self.epochs)]
        for item in self.overrides:
            argv += ["--set", item]
        if self.variant:
            argv += ["--variant", self.variant]
        if self.robustness is not None:
            argv += ["--robustness", self.robustness]
        return argv

    def pending(self, point: GridPoint) -> str | None:
        """What a complete run still lacks for this sweep (its ``robustness.json``), or None."""
        if self.robustness is None:
            return None
        from osma_bench.robustness.evaluate import robustness_done
        from osma_bench.robustness.perturbations import Settings, parse_spec

        if robustness_done(point.run_dir, parse_spec(self.robustness), Settings()):
            return None
        return "robustness.json of this spec missing"


def format_argv(argv: Sequence[str]) -> str:
    """A shell-quoted, copy-pasteable form of ``argv`` (for logs)."""
    import shlex

    return " ".join(shlex.quote(a) for a in argv)
