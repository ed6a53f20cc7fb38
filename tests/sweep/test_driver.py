"""The sweep driver with a fake runner: skipping, resuming, failures, parallelism, interruption."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console

from osma_bench.errors import OsmaError
from osma_bench.sweep.driver import sweep_lock
from osma_bench.sweep.local import LocalExecutor
from osma_bench.sweep.plan import execute
from osma_bench.sweep.slurm import SubmititExecutor

from .conftest import FakeGrid


def run(grid: FakeGrid, executor=None, tail: int = 15):
    out = io.StringIO()
    console = Console(file=out, width=200, highlight=False)
    report = execute(grid.sweep(), executor or LocalExecutor(jobs=2, poll_s=0.05), console, tail=tail, live=False)
    return report, out.getvalue()


def test_failures_do_not_stop_the_others_and_are_summarised(fake_grid):
    fake_grid.modes[("a", 2, 0)] = "fail"
    fake_grid.modes[("b", 2, 0)] = "crash"
    fake_grid.modes[("b", 1, 0)] = "noop"
    report, text = run(fake_grid)
    status = {o.point.label: o.status for o in report.outcomes}
    assert status == {"a split1 seed0": "done", "b split1 seed0": "failed", "a split2 seed0": "failed",
                      "b split2 seed0": "failed"}
    reasons = {o.point.label: o.reason for o in report.failed}
    assert reasons["a split2 seed0"] == "exit status 2: ValueError: boom in epoch 2"
    assert reasons["b split2 seed0"].startswith("killed by signal 9 (SIGKILL")
    assert "not complete" in reasons["b split1 seed0"]
    assert not report.ok and not report.interrupted
    # the summary: counts, then a table of failures with the last lines each run printed
    assert "4 runs; 1 done, 3 failed" in text
    assert "3 failed run(s)" in text and "ValueError: boom in epoch 2" in text and "epoch 1/2 loss 0.5" in text
    assert "rerun the same command" in text
    record = json.loads((fake_grid.logs / "toyset.sweep.json").read_text())
    assert record["counts"]["done"] == 1 and record["counts"]["failed"] == 3 and len(record["runs"]) == 4


def test_complete_runs_are_skipped_and_partial_ones_resumed(fake_grid):
    fake_grid.make_complete("a", 1, 0)
    partial = fake_grid.out / "toyset" / "b" / "split2" / "seed0"
    partial.mkdir(parents=True)
    (partial / "run.json").write_text(json.dumps({"status": "running"}))  # killed without notice
    report, text = run(fake_grid)
    assert "1 run(s) say status running (e.g. b split2 seed0)" in text
    assert report.ok and report.count("skipped") == 1 and report.count("done") == 3
    assert fake_grid.ran() == {"toyset/b/split1/seed0", "toyset/a/split2/seed0", "toyset/b/split2/seed0"}
    resumed = {o.point.label for o in report.outcomes if o.resumed}
    assert resumed == {"b split2 seed0"} and "(resumed)" in text
    # a second sweep finds everything complete and starts nothing
    report, text = run(fake_grid)
    assert report.count("skipped") == 4 and len(fake_grid.entries()) == 3
    assert "nothing to do" not in text and "4 already complete" in text


def test_at_most_jobs_at_once_with_threads_split_between_them(tmp_path):
    grid = FakeGrid(tmp_path, methods=("a", "b", "c", "d"), splits=(1,), sleep_s=1.5)
    executor = LocalExecutor(jobs=2, threads=3, poll_s=0.05)
    report, _ = run(grid, executor)
    assert report.ok
    entries = grid.entries()
    assert len(entries) == 4 and {e["threads"] for e in entries} == {"3"}
    events = sorted([(e["start"], 1) for e in entries] + [(e["end"], -1) for e in entries])
    level, peak = 0, 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == 2
    assert LocalExecutor(jobs=4).threads == max(1, len(os.sched_getaffinity(0)) // 4)
    assert LocalExecutor(jobs=2, gpus=[4, 5]).env(3)["CUDA_VISIBLE_DEVICES"] == "5"
    with pytest.raises(OsmaError, match="--jobs"):
        LocalExecutor(jobs=0)


def test_submitit_executor_runs_the_same_commands(fake_grid):
    fake_grid.modes[("b", 2, 0)] = "fail"
    executor = SubmititExecutor(fake_grid.logs / "submitit", cluster="local", max_parallel=2, cpus=1,
                                time_min=5, partition="ignored-here", poll_s=0.1)
    report, text = run(fake_grid, executor)
    assert [o.status for o in report.outcomes] == ["done", "done", "done", "failed"]
    assert report.failed[0].reason == "exit status 2: ValueError: boom in epoch 2"
    assert {e["threads"] for e in fake_grid.entries()} == {"1"}
    assert "submitit-local" in text and "boom" in text


def test_slurm_needs_sbatch(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OsmaError, match="sbatch is not on PATH"):
        SubmititExecutor(tmp_path, cluster="slurm")


def test_two_sweeps_never_share_results(tmp_path):
    with sweep_lock(tmp_path / "x.lock"):
        with pytest.raises(OsmaError, match="another sweep is running"):
            with sweep_lock(tmp_path / "x.lock"):
                pass
    with sweep_lock(tmp_path / "x.lock"):  # released
        pass


DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from rich.console import Console
    sys.path.insert(0, {tests!r})
    from sweep.conftest import FakeGrid
    from osma_bench.sweep.local import LocalExecutor
    from osma_bench.sweep.plan import execute
    grid = FakeGrid(Path({root!r}), methods=("a", "b", "c"), splits=(1,), sleep_s={sleep})
    report = execute(grid.sweep(), LocalExecutor(jobs=2, poll_s=0.05), Console(width=200), live=False)
    sys.exit(130 if report.interrupted else (1 if report.failed else 0))
""")


def start_driver(root: Path, sleep: float) -> subprocess.Popen:
    code = DRIVER.format(tests=str(Path(__file__).parent.parent), root=str(root), sleep=sleep)
    # SIGINT at its default in the driver even when the test runner was started with it ignored
    # (a background job of a non-interactive shell), as it is for a user at a terminal.
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_interrupted_sweep_rerun_finishes_only_what_is_missing(tmp_path):
    grid = FakeGrid(tmp_path, methods=("a", "b", "c"), splits=(1,))
    proc = start_driver(tmp_path, sleep=60)
    deadline = time.time() + 30
    while time.time() < deadline:  # both parallel jobs have written run.json
        if all((p.run_dir / "run.json").is_file() for p in grid.points[:2]):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the fake runs never started")
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "interrupted" in output and "2 cancelled, 1 not started" in output
    # the jobs were stopped with SIGINT (as Ctrl-C would) and marked themselves interrupted
    for point in grid.points[:2]:
        assert json.loads((point.run_dir / "run.json").read_text())["error"] == "interrupted"
    assert not grid.points[2].run_dir.exists()
    record = json.loads((grid.logs / "toyset.sweep.json").read_text())
    assert record["interrupted"] and record["counts"]["cancelled"] == 2

    grid.make_complete("a", 1, 0)  # as if that run had finished just before the interrupt
    before = len(grid.entries())
    report, text = run(grid)
    assert report.ok and report.count("skipped") == 1 and report.count("done") == 2
    started = grid.entries()[before:]
    assert sorted((Path(e["run_dir"]).parts[-3], e["resumed"]) for e in started) == [("b", True), ("c", False)]


def test_a_slurm_job_lost_outside_the_run_is_a_failure_with_a_note(fake_grid):
    from submitit.core.utils import UncompletedJobError

    from osma_bench.sweep.outcome import judge
    from osma_bench.sweep.slurm import SubmititHandle

    class LostJob:  # what submitit gives for a job killed by Slurm (time limit, node failure)
        job_id = "4242"

        def done(self):
            return True

        def result(self):
            raise UncompletedJobError("Job 4242 (task: 0) with path ...\nhas not produced any output (state: NODE_FAIL)")

    handle = SubmititHandle(LostJob())
    assert handle.poll() == -1
    outcome = judge(fake_grid.points[0], -1, 1.0, handle.note, resumed=False)
    assert outcome.status == "failed"
    assert outcome.reason.startswith("the job ended outside the run [submitit job 4242: UncompletedJobError:")
    assert "NODE_FAIL" in outcome.reason
