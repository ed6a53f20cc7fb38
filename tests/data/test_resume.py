"""A build SIGKILLed mid-way leaves no complete-looking dataset; --resume finishes it identically."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from osma_bench.data import load_card, verify_dataset
from osma_bench.data.build import BuildPlan, Item, run_build
from osma_bench.data.preprocess import PreprocessConfig
from osma_bench.data.store import CARD_FILE, PARTIAL_MARKER, PROGRESS_FILE, partial_dir
from osma_bench.errors import OsmaError

from .imagetree import write_image

N = 90
CFG = PreprocessConfig(size=16)


def make_plan(root: Path) -> BuildPlan:
    items, train, test = [], [], []
    for i in range(N):
        rel = f"img/{i:03d}.png"
        if not (root / rel).exists():
            write_image(root / rel, i, size=(24, 20))
        items.append(Item(rel, i % 2))
        (train if i % 3 else test).append((rel, i % 2))
    classes = [{"name": "real", "real": True}, {"name": "fake"}]
    splits = {1: {"known": ["real", "fake"], "unknown": {"seed": [], "arch": [], "dataset": []},
                  "partitions": {"train": train, "test": test}}}
    return BuildPlan("resume", root, classes, items, splits)


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from data.test_resume import make_plan, CFG
    from osma_bench.data.build import run_build
    root, out, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    def progress(done, total):
        log.write_text(str(done))
        time.sleep(0.02)
    run_build(make_plan(root), out, CFG, shard_size=8, progress=progress)
""")


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    root = tmp_path / "src"
    plan = make_plan(root)
    expected = load_card(run_build(plan, tmp_path / "whole", CFG, shard_size=8))["content_sha256"]

    out, log = tmp_path / "killed", tmp_path / "log"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).resolve().parents[1])))
    proc = subprocess.Popen([sys.executable, str(script), str(root), str(out), str(log)])
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().strip() and int(log.read_text()) >= 45:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    assert not out.exists() and not (out / CARD_FILE).exists()
    work = partial_dir(out)
    assert (work / PROGRESS_FILE).is_file() and not (work / CARD_FILE).exists()
    assert verify_dataset(out)  # not a dataset
    assert len(list(work.glob("images-*.h5"))) >= 4  # whole shards kept for the resume

    kept_inode = (work / "images-00000.h5").stat().st_ino
    resumed = run_build(make_plan(root), out, CFG, shard_size=8, resume=True)
    assert (resumed / "images-00000.h5").stat().st_ino == kept_inode  # reused, not rebuilt
    assert load_card(resumed)["content_sha256"] == expected
    assert verify_dataset(resumed) == []


def test_plain_rerun_starts_clean(tmp_path):
    root = tmp_path / "src"
    plan = make_plan(root)
    expected = load_card(run_build(plan, tmp_path / "whole", CFG, shard_size=8))["content_sha256"]
    work = partial_dir(tmp_path / "again")
    work.mkdir(parents=True)
    (work / PARTIAL_MARKER).write_text("")  # a partial folder an earlier build made
    (work / "images-00000.h5").write_bytes(b"junk from an old build")
    out = run_build(plan, tmp_path / "again", CFG, shard_size=8)
    assert load_card(out)["content_sha256"] == expected
    assert not work.exists()


def test_unrelated_partial_folder_is_never_deleted(tmp_path):
    plan = make_plan(tmp_path / "src")
    mine = partial_dir(tmp_path / "ds")
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("the user's own file")
    for resume in (False, True):
        with pytest.raises(OsmaError, match=r"was not made by an osma-bench build.*not deleting it"):
            run_build(plan, tmp_path / "ds", CFG, shard_size=8, resume=resume)
    assert (mine / "thesis.tex").read_text() == "the user's own file"
