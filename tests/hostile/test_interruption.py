"""Interruption and concurrency: sweep jobs die with their driver, Ctrl-C of a build exits 130 with
one line saying what is kept and how to resume, and a resumed build reaches the same content."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from osma_bench.cli import main
from osma_bench.data import load_card

from .conftest import one_error_line


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state and "\nState:\tX" not in state


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_sweep_job_dies_with_its_killed_driver(tmp_path):
    job_pid = tmp_path / "job.pid"
    job = f"import os, time; open({str(job_pid)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    driver = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from osma_bench.sweep.process import start_process
        proc, log = start_process([sys.executable, "-c", {job!r}], Path({str(tmp_path / 'job.log')!r}), {{}})
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", driver], env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        deadline = time.monotonic() + 60
        while not job_pid.is_file() or not job_pid.read_text():
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.1)
        pid = int(job_pid.read_text())
        assert _alive(pid)
        proc.send_signal(signal.SIGKILL)  # the driver dies without a chance to clean up
        proc.wait()
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "the job outlived its driver"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_build_interrupted_exits_130_with_one_line_then_resumes(tmp_path, monkeypatch, capsys):
    from osma_bench.data import build as build_module
    from tests.data.test_build_custom import example_tree

    manifest = example_tree(tmp_path)
    clean = tmp_path / "clean"
    assert main(["build-data", "custom", "--manifest", str(manifest), "--out", str(clean)]) == 0
    expected = load_card(clean)["content_sha256"]

    real, calls = build_module.process_item, {"n": 0}

    def interrupted_after_30(arg):
        calls["n"] += 1
        if calls["n"] > 30:
            raise KeyboardInterrupt
        return real(arg)

    monkeypatch.setattr(build_module, "process_item", interrupted_after_30)
    out = tmp_path / "ds"
    capsys.readouterr()
    assert main(["build-data", "custom", "--manifest", str(manifest), "--out", str(out)]) == 130
    line = one_error_line(capsys.readouterr().err)
    assert "interrupted" in line and "--resume" in line and "ds.partial" in line
    assert not out.exists()
    monkeypatch.setattr(build_module, "process_item", real)
    assert main(["build-data", "custom", "--manifest", str(manifest), "--out", str(out), "--resume"]) == 0
    assert load_card(out)["content_sha256"] == expected


def test_build_refuses_to_delete_an_unrelated_partial_folder(tmp_path, capsys):
    from tests.data.test_build_custom import example_tree

    manifest = example_tree(tmp_path)
    mine = tmp_path / "ds.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main(["build-data", "custom", "--manifest", str(manifest), "--out", str(tmp_path / "ds")]) == 2
    assert "not made by an osma-bench build" in one_error_line(capsys.readouterr().err)
    assert (mine / "notes.txt").read_text() == "mine"


def test_ctrl_c_of_a_build_with_worker_processes_is_one_line_no_hang(tmp_path):
    """A real SIGINT to the whole process group (as a terminal sends it) while decoding processes
    start: exit 130, one line, no traceback from the workers, no hang; --resume then completes."""
    from tests.data.test_build_custom import example_tree

    manifest = example_tree(tmp_path)
    exe = [sys.executable, "-m", "osma_bench.cli", "build-data", "custom", "--manifest", str(manifest), "--out",
           str(tmp_path / "ds"), "--workers", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(exe, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "ds.partial" / "progress.json").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)  # lands while the decoding processes start: deferred, not lost
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the interrupted build hung") from None
    assert proc.returncode == 130, err
    line = one_error_line(err)
    assert "interrupted" in line and "--resume" in line
    done = subprocess.run(exe + ["--resume"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert load_card(tmp_path / "ds")["num_images"] > 0
