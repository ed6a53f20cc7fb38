"""A run directory is never lost or shared: staged --overwrite, the run-directory lock."""

from __future__ import annotations

import fcntl
import json
import os

import pytest

from osma_bench.cli import main
from osma_bench.errors import OsmaError
from osma_bench.harness import runner
from tests.hostile.conftest import one_error_line


def _args(synthetic, out, *extra):
    return ["run", "--method", "base", "--data", str(synthetic), "--profile", "smoke", "--device", "cpu",
            "--out", str(out), "--no-progress", "--set", "num_threads=1", *extra]


@pytest.fixture
def complete_run(synthetic, tmp_path):
    assert main(_args(synthetic, tmp_path)) == 0
    path = tmp_path / "syn" / "base" / "split1" / "seed0"
    return path, {p.name: p.read_bytes() for p in path.iterdir() if p.is_file() and p.name != ".lock"}


def _files(path):
    return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("failure", [OsmaError("lr must be a number"), KeyboardInterrupt()])
def test_failed_overwrite_keeps_the_old_run(synthetic, tmp_path, complete_run, monkeypatch, capsys, failure):
    path, before = complete_run

    def broken(*args, **kwargs):
        raise failure

    monkeypatch.setattr(runner, "_execute", broken)
    code = main(_args(synthetic, tmp_path, "--overwrite"))
    assert code == (130 if isinstance(failure, KeyboardInterrupt) else 2)
    assert _files(path) == before  # byte for byte
    assert json.loads((path / "run.json").read_text())["status"] == "complete"
    assert sorted(p.name for p in path.parent.iterdir()) == ["seed0"]  # no staging folder left


def test_overwrite_with_a_bad_config_deletes_nothing(synthetic, tmp_path, complete_run, capsys):
    path, before = complete_run
    assert main(_args(synthetic, tmp_path, "--overwrite", "--set", "bogus=1")) == 2
    assert "unknown key" in capsys.readouterr().err
    assert _files(path) == before


def test_successful_overwrite_swaps_in_the_new_run(synthetic, tmp_path, complete_run):
    path, before = complete_run
    assert main(_args(synthetic, tmp_path, "--overwrite", "--set", "lr=0.01")) == 0
    assert json.loads((path / "run.json").read_text())["config"]["lr"] == 0.01
    assert sorted(p.name for p in path.parent.iterdir()) == ["seed0"]


def test_stale_staging_folder_of_a_killed_overwrite_is_replaced(synthetic, tmp_path, complete_run):
    path, _ = complete_run
    stale = path.parent / ".seed0.new"
    stale.mkdir()
    (stale / "run.json").write_text("{}")
    assert main(_args(synthetic, tmp_path, "--overwrite")) == 0
    assert json.loads((path / "run.json").read_text())["status"] == "complete"
    assert not stale.exists()


@pytest.mark.parametrize("mode", [[], ["--resume"], ["--overwrite"]])
def test_second_run_into_a_locked_run_directory_is_refused(synthetic, tmp_path, complete_run, capsys, mode):
    path, before = complete_run
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT)  # another process's lock, as the kernel sees it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        capsys.readouterr()
        assert main(_args(synthetic, tmp_path, *mode)) == 2
        err = one_error_line(capsys.readouterr().err)
        assert "another osma-bench run is writing" in err
    finally:
        os.close(fd)
    assert _files(path) == before
    assert main(_args(synthetic, tmp_path, "--resume")) == 0  # lock gone: it proceeds


def test_out_that_is_a_file_is_refused(synthetic, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    assert main(_args(synthetic, blocker)) == 2
    err = capsys.readouterr().err
    assert "not a directory" in one_error_line(err)
    assert blocker.read_text() == "mine"
