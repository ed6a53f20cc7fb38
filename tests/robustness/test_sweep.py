"""``sweep --robustness SPEC`` (and ``run --robustness``): the pass after each run, resumable."""

from __future__ import annotations

import io
import json
import sys

from rich.console import Console

from osma_bench.cli import main
from osma_bench.robustness import ROBUSTNESS_FILE
from osma_bench.sweep.display import SweepProgress
from osma_bench.sweep.driver import run_sweep
from osma_bench.sweep.grid import expand_grid
from osma_bench.sweep.local import LocalExecutor


def sweep_args(data, out, *extra):
    return ["sweep", "--data", str(data), "--methods", "base", "--splits", "1", "--seeds", "0", "--profile",
            "smoke", "--device", "cpu", "--out", str(out), "--set", "num_threads=1", *extra]


def test_sweep_runs_robustness_after_each_run_and_skips_it_when_done(synthetic, tmp_path, capsys):
    out = tmp_path / "res"
    run_dir = out / "syn" / "base" / "split1" / "seed0"
    assert main(sweep_args(synthetic, out, "--robustness", "jpeg:50 blur:1")) == 0
    assert "1 done" in capsys.readouterr().out
    first = json.loads((run_dir / ROBUSTNESS_FILE).read_text())
    assert first["spec"] == "jpeg:50 blur:1" and first["clean_matches_metrics"] is True
    finished = json.loads((run_dir / "run.json").read_text())["finished"]
    record = json.loads((out / ".sweep" / "syn.sweep.json").read_text())
    assert record["robustness"] == "jpeg:50 blur:1"

    assert main(sweep_args(synthetic, out, "--robustness", "jpeg:50  blur:1.0")) == 0  # the same spec
    assert "1 already complete" in capsys.readouterr().out
    assert json.loads((run_dir / ROBUSTNESS_FILE).read_text())["created"] == first["created"]

    assert main(sweep_args(synthetic, out, "--robustness", "noise:0.1", "--dry-run")) == 0
    assert "robustness only" in capsys.readouterr().out
    assert main(sweep_args(synthetic, out, "--robustness", "noise:0.1")) == 0  # another spec: only the pass
    assert "1 done" in capsys.readouterr().out
    assert json.loads((run_dir / ROBUSTNESS_FILE).read_text())["spec"] == "noise:0.1"
    assert json.loads((run_dir / "run.json").read_text())["finished"] == finished  # not trained again


def test_a_bad_spec_stops_the_sweep_and_the_run_before_training(synthetic, tmp_path, capsys):
    assert main(sweep_args(synthetic, tmp_path / "res", "--robustness", "jpeg:0")) == 2
    assert "outside [1, 100]" in capsys.readouterr().err
    assert main(["run", "--method", "base", "--data", str(synthetic), "--profile", "smoke", "--device", "cpu",
                 "--out", str(tmp_path / "res"), "--robustness", "fog:1"]) == 2
    assert "unknown perturbation 'fog'" in capsys.readouterr().err
    assert not (tmp_path / "res" / "syn").exists()


def test_driver_counts_a_run_done_only_when_nothing_is_pending(tmp_path):
    """A complete run with pending work is started again; it is done only once that work exists."""
    points = expand_grid("toy", ["a", "b", "c"], [1], [0], tmp_path / "res", tmp_path / "logs")
    for point in points:  # every run complete; a's extra file exists already
        point.run_dir.mkdir(parents=True)
        (point.run_dir / "run.json").write_text(json.dumps({"status": "complete", "profile": "smoke"}))
        (point.run_dir / "metrics.json").write_text("{}")
    (points[0].run_dir / "extra").write_text("")
    script = "import pathlib, sys; d = pathlib.Path(sys.argv[1]); d.name and (d / 'extra').write_text('')"

    def command(point):  # b's command makes the extra file, c's does nothing
        return [sys.executable, "-c", script if point.method == "b" else "pass", str(point.run_dir)]

    def pending(point):
        return None if (point.run_dir / "extra").is_file() else "extra missing"

    console = Console(file=io.StringIO(), width=200)
    with SweepProgress(console, live=False) as progress:
        report = run_sweep(points, command, LocalExecutor(jobs=1, poll_s=0.02), progress, pending)
    status = {o.point.method: o for o in report.outcomes}
    assert status["a"].status == "skipped"
    assert status["b"].status == "done" and status["b"].resumed
    assert status["c"].status == "failed" and "extra missing" in status["c"].reason
