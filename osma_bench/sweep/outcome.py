"""How each grid point of a sweep ended, and the sweep as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from osma_bench.sweep.grid import GridPoint
from osma_bench.sweep.state import COMPLETE, run_state

SKIPPED, DONE, FAILED, CANCELLED, NOT_RUN = "skipped", "done", "failed", "cancelled", "not run"


@dataclass
class Outcome:
    """One grid point: ``skipped`` (already complete), ``done``, ``failed``, ``cancelled`` or ``not run``."""

    point: GridPoint
    status: str
    seconds: float = 0.0
    returncode: int | None = None
    reason: str | None = None
    resumed: bool = False

    def as_dict(self) -> dict:
        return {"method": self.point.method, "split": self.point.split, "seed": self.point.seed,
                "status": self.status, "seconds": round(self.seconds, 3), "returncode": self.returncode,
                "reason": self.reason, "resumed": self.resumed, "run_dir": str(self.point.run_dir),
                "log": str(self.point.log)}


@dataclass
class SweepReport:
    """Every grid point's outcome, in grid order, and the wall time."""

    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def ok(self) -> bool:
        """Every run of the grid is complete on disk."""
        return all(o.status in (SKIPPED, DONE) for o in self.outcomes)


def describe_exit(returncode: int | None) -> str:
    """``exit status 2``, ``killed by signal 9 (SIGKILL; out of memory?)``, ..."""
    import signal

    if returncode is None:
        return "did not finish"
    if returncode >= 0:
        return f"exit status {returncode}"
    if returncode == -1:
        return "the job ended outside the run"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "unknown signal"
    hint = "; out of memory?" if returncode == -9 else ""
    return f"killed by signal {-returncode} ({name}{hint})"


def judge(point: GridPoint, returncode: int, seconds: float, note: str | None, resumed: bool) -> Outcome:
    """A finished command is ``done`` only if it exited 0 *and* left a complete run on disk."""
    state = run_state(point.run_dir)
    if returncode == 0 and state.state == COMPLETE:
        return Outcome(point, DONE, seconds, returncode, resumed=resumed)
    if returncode == 0:
        reason = "exited 0 but the run is not complete (run.json status or metrics.json missing)"
    else:
        reason = describe_exit(returncode)
        if state.error:
            reason += f": {state.error.strip().splitlines()[-1][:300]}"
    if note:
        reason += f" [{note}]"
    return Outcome(point, FAILED, seconds, returncode, reason, resumed)


def log_tail(point: GridPoint, lines: int) -> list[str]:
    """The last ``lines`` lines a run printed (the sweep log, else the run's own log.txt).

    The sweep's own header and exit lines (``===== ...``) are left out.
    """
    for path in (point.log, Path(point.run_dir) / "log.txt"):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        kept = [ln.rstrip() for ln in text.splitlines() if ln.strip() and not ln.startswith("===== ")]
        if kept:
            return kept[-lines:] if lines > 0 else []
    return []
