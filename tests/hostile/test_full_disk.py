"""A full disk, for real: each command runs in a private mount namespace (``unshare -rm``) on a
small tmpfs filled to a few KiB, and must end in one ``error:`` line naming the path, leave no
partial output there and keep what was there before. Skipped where user namespaces are not allowed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from osma_bench.cli import main

from .conftest import one_error_line

UNSHARE = shutil.which("unshare")
EXE = str(Path(sys.executable).with_name("osma-bench"))


def _namespaces_work() -> bool:
    if UNSHARE is None or sys.platform != "linux":
        return False
    probe = subprocess.run([UNSHARE, "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _namespaces_work(), reason="needs unshare -rm and a tmpfs mount")


def full_disk(tmp_path: Path, command: list[str], setup: str = "", leave_kib: int = 4, cwd: Path | None = None,
              keep: tuple[str, ...] = ()) -> tuple[int, str, list[str], dict[str, str]]:
    """Run ``command`` with ``tmp_path/small`` a 16 MiB tmpfs holding ``leave_kib`` KiB free.

    Returns the exit status, stderr, the files left under ``small`` (filler excluded) and the text
    of the files named in ``keep`` (paths relative to ``small``), read before the tmpfs goes away.
    """
    small, report = tmp_path / "small", tmp_path / "report"
    small.mkdir(exist_ok=True)
    report.mkdir(exist_ok=True)
    keep_cmds = "\n".join(f'[ -f "{small}/{k}" ] && cp "{small}/{k}" "{report}/{k.replace("/", "__")}"' for k in keep)
    script = f"""
set -e
mount -t tmpfs -o size=16m tmpfs "{small}"
{setup}
dd if=/dev/zero of="{small}/filler" bs=64k 2>/dev/null || true
truncate -s -{leave_kib}K "{small}/filler"
set +e
"$@" > "{report}/stdout" 2> "{report}/stderr"
echo $? > "{report}/rc"
(cd "{small}" && find . -mindepth 1 ! -name filler) > "{report}/listing"
{keep_cmds}
"""
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="200")
    subprocess.run([UNSHARE, "-rm", "sh", "-c", script, "sh", *command], cwd=cwd or tmp_path, env=env,
                   timeout=300, check=True)
    kept = {k: (report / k.replace("/", "__")).read_text() for k in keep if (report / k.replace("/", "__")).is_file()}
    listing = sorted(line[2:] for line in (report / "listing").read_text().splitlines())
    return int((report / "rc").read_text()), (report / "stderr").read_text(), listing, kept


@pytest.fixture(scope="module")
def finished_run(synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert main(["run", "--method", "base", "--data", str(synthetic), "--profile", "smoke", "--device", "cpu",
                 "--out", str(out), "--no-progress", "--set", "num_threads=1"]) == 0
    return out, out / "syn" / "base" / "split1" / "seed0"


def _disk_full_line(err: str, path_fragment: str) -> str:
    line = one_error_line(err)
    assert "no space left on device" in line and path_fragment in line, line
    return line


def test_build_data_custom_on_a_full_disk(tmp_path):
    from tests.data.test_build_custom import example_tree

    src = tmp_path / "src"
    src.mkdir()
    manifest = example_tree(src)
    out = tmp_path / "small" / "ds"
    rc, err, listing, _ = full_disk(tmp_path, [EXE, "build-data", "custom", "--manifest", str(manifest), "--out",
                                               str(out)], cwd=src, leave_kib=256)
    assert rc == 2
    _disk_full_line(err, "ds.partial")
    assert "MiB needed" in err
    assert listing == []  # the partial folder and its shard are gone


def test_run_on_a_full_disk_ends_failed_not_running(synthetic, tmp_path):
    res = tmp_path / "small" / "res"
    rc, err, listing, kept = full_disk(
        tmp_path, [EXE, "run", "--method", "base", "--data", str(synthetic), "--profile", "smoke", "--device", "cpu",
                   "--out", str(res), "--no-progress", "--set", "num_threads=1"],
        leave_kib=64, keep=("res/syn/base/split1/seed0/run.json",))
    assert rc == 2
    _disk_full_line(err, "small/res/syn/base/split1/seed0")
    record = json.loads(kept["res/syn/base/split1/seed0/run.json"])
    assert record["status"] == "failed" and "no space left" in record["error"]
    assert not [name for name in listing if name.endswith(".tmp")]


def test_eval_on_a_full_disk(synthetic, finished_run, tmp_path):
    _, run = finished_run
    rc, err, listing, _ = full_disk(tmp_path, [EXE, "eval", "--scores", str(run / "scores.h5"), "--data",
                                               str(synthetic), "--split", "1", "--out", str(tmp_path / "small")],
                                    leave_kib=0)
    assert rc == 2
    _disk_full_line(err, "metrics.json")
    assert listing == []


def test_report_on_a_full_disk_keeps_the_old_leaderboard(finished_run, tmp_path):
    results, _ = finished_run
    board = tmp_path / "small" / "LEADERBOARD.md"
    rc, err, listing, kept = full_disk(tmp_path, [EXE, "report", str(results), "--out", str(board)],
                                       setup=f'echo "old board" > "{board}"', leave_kib=0,
                                       keep=("LEADERBOARD.md",))
    assert rc == 2
    _disk_full_line(err, "LEADERBOARD.md")
    assert kept["LEADERBOARD.md"] == "old board\n" and listing == ["LEADERBOARD.md"]


def test_discover_on_a_full_disk(finished_run, tmp_path):
    _, run = finished_run
    copy = tmp_path / "small" / "run"
    rc, err, listing, _ = full_disk(tmp_path, [EXE, "discover", "--run", str(copy), "--k", "3"],
                                    setup=f'cp -r "{run}" "{copy}"', leave_kib=0)
    assert rc == 2
    _disk_full_line(err, "clustering.json")
    assert "run/clustering.json" not in listing and not [n for n in listing if n.endswith(".tmp")]
