"""One grid point: an ``osma-bench run`` subprocess, watched through its run.json and stopped when
its projected training time exceeds the cap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from osma_bench.tune.record import RunSummary, projected_train_s, read_record, summarise

#: Seconds between looks at a running point's run.json.
POLL_S = 1.0
#: A point whose wall time passes this multiple of the cap (plus :data:`WALL_SLACK_S` for start-up,
#: data checks and the final evaluation) is stopped even before its first epoch ends (one enormous
#: epoch, e.g. a non-training method's single pass).
WALL_GUARD = 2.0
WALL_SLACK_S = 60.0
#: Seconds an interrupted run gets to write its record before it is killed.
GRACE_S = 30.0


@dataclass(frozen=True)
class PointOutcome:
    """How a grid point ended: ``complete``, ``over_cap`` (stopped) or ``failed``."""

    status: str
    summary: RunSummary | None
    wall_s: float
    note: str = ""


def run_command(method: str, data: Path, split: int, seed: int, profile: str, out: Path, variant: str | None,
                settings: dict[str, str], device: str = "auto") -> list[str]:
    """The ``osma-bench run`` command line of one point (resumes a run left by an earlier tune)."""
    cmd = [sys.executable, "-m", "osma_bench.cli", "run", "--method", method, "--data", str(data),
           "--split", str(split), "--seed", str(seed), "--profile", profile, "--out", str(out),
           "--device", device, "--resume", "--no-progress"]
    if variant:
        cmd += ["--variant", variant]
    for key, value in settings.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def run_point(cmd: list[str], run_dir: Path, cap_s: float | None, log: Path) -> PointOutcome:
    """Run ``cmd``; stop it (SIGINT, then kill) once its projected training time exceeds ``cap_s``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    note = ""
    with open(log, "a", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=dict(os.environ))
        while proc.poll() is None:
            time.sleep(POLL_S)
            if cap_s is None:
                continue
            record = read_record(run_dir)
            projected = projected_train_s(summarise(record)) if record else None
            wall = time.monotonic() - started
            if projected is not None and projected > cap_s:
                note = f"stopped: projected training time {projected:.0f} s > cap {cap_s:.0f} s"
            elif wall > WALL_GUARD * cap_s + WALL_SLACK_S:
                note = (f"stopped: {wall:.0f} s of wall time > {WALL_GUARD:g} x the cap ({cap_s:.0f} s) + "
                        f"{WALL_SLACK_S:.0f} s")
            if note:
                _stop(proc)
                break
    wall_s = time.monotonic() - started
    record = read_record(run_dir)
    summary = summarise(record) if record else None
    if note:
        return PointOutcome("over_cap", summary, wall_s, note)
    if cap_s is not None and summary is not None and summary.train_s > cap_s:  # ended between two looks
        return PointOutcome("over_cap", summary, wall_s,
                            f"training took {summary.train_s:.1f} s > cap {cap_s:.1f} s")
    if proc.returncode == 0 and summary is not None and summary.status == "complete":
        return PointOutcome("complete", summary, wall_s)
    return PointOutcome("failed", summary, wall_s, f"exit {proc.returncode}; see {log}")


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)  # the runner records "interrupted" in run.json
    try:
        proc.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
