"""Long phases show progress: plain lines when the output is not a terminal (logs, pipes, Slurm)."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from osma_bench import phases
from osma_bench.harness.runner import RunRequest, run
from osma_bench.phases import PhaseProgress, phase


def _console(terminal: bool = False) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=100, force_terminal=terminal, color_system=None), buf


def test_counted_phases_print_start_progress_and_end_lines():
    console, buf = _console()
    with PhaseProgress(console, interval_s=0.0) as progress:
        progress.update("training generators", 0, 3)
        progress.update("training generators", 1, 3)
        progress.update("training generators", 3, 3)
        progress.update("writing", 0, None)
        progress.update("writing", 5, None)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "training generators: 0/3 ..."
    assert lines[1].startswith("training generators: 1/3 (")
    assert re.fullmatch(r"training generators: done in \d+\.\d s", lines[2])
    assert lines[3] == "writing ..."
    assert lines[4].startswith("writing: (")
    assert re.fullmatch(r"writing: done in \d+\.\d s", lines[5])  # ended when the whole build ended
    assert len(lines) == 6


def test_lines_are_rate_limited_off_a_terminal():
    console, buf = _console()
    with PhaseProgress(console, interval_s=3600.0) as progress:
        for done in range(100):
            progress.update("checksums", done, 100)
        progress.update("checksums", 100, 100)
    assert len(buf.getvalue().splitlines()) == 2  # start and end only


def test_a_phase_without_counts_and_the_terminal_bar(monkeypatch):
    monkeypatch.setattr(phases, "START_AFTER_S", 0.0)
    console, buf = _console()
    with phase(console, "final evaluation"):
        pass
    assert buf.getvalue().splitlines()[0] == "final evaluation ..."
    assert buf.getvalue().splitlines()[1].startswith("final evaluation: done in ")
    console, buf = _console(terminal=True)
    with phase(console, "final evaluation"):
        pass
    assert "done in" not in buf.getvalue()  # a (transient) bar, no plain lines
    console, buf = _console()
    with phase(console, "skipped", enabled=False):
        pass
    assert buf.getvalue() == ""


def test_quick_phase_prints_only_its_end_and_a_slow_one_its_start(monkeypatch):
    console, buf = _console()
    with phase(console, "final evaluation"):
        pass
    assert buf.getvalue().splitlines()[0].startswith("final evaluation: done in ")
    monkeypatch.setattr(phases, "START_AFTER_S", 0.05)
    console, buf = _console()
    with phase(console, "final evaluation"):
        time.sleep(0.5)
    assert buf.getvalue().splitlines()[0] == "final evaluation ..."


@pytest.mark.parametrize("start_after", [0.0, 2.0])
def test_failed_phase_prints_no_done_line(monkeypatch, start_after):
    monkeypatch.setattr(phases, "START_AFTER_S", start_after)
    console, buf = _console()
    try:
        with phase(console, "verifying dataset checksums"):
            raise ValueError("corrupt")
    except ValueError:
        pass
    assert "done" not in buf.getvalue()
    assert ("verifying dataset checksums ..." in buf.getvalue()) == (start_after == 0.0)


def test_a_run_off_a_terminal_prints_a_line_per_phase(synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr(phases, "START_AFTER_S", 0.0)  # as if each phase took long
    console, buf = _console()
    run(RunRequest(method="base", data=synthetic, split=1, seed=0, profile="smoke", device="cpu", out=tmp_path,
                   epochs=1, overrides={"num_threads": 1}, progress=False), console=console)
    text = buf.getvalue()
    for name in ("verifying dataset checksums", "final evaluation"):
        assert f"{name} ..." in text and re.search(rf"{name}: done in \d+\.\d s", text), text
    assert text.index("verifying dataset checksums: done") < text.index("epoch 1/1") < text.index("final evaluation ...")
