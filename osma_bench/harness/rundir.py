"""The run directory: ``results/<dataset>/<method>/split<k>/seed<s>/`` (docs/CONTRACTS.md section 4)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from osma_bench.errors import OsmaError
from osma_bench.harness import checkpoint
from osma_bench.io import read_json, write_json

RUN_FILES = ("run.json", "metrics.json", "scores.h5", "log.txt", checkpoint.LAST, checkpoint.BEST)


def run_path(out: Path, dataset: str, method: str, split: int, seed: int, variant: str | None = None) -> Path:
    """Where one run's files go (see :func:`osma_bench.results.run_path`)."""
    from osma_bench.results import run_path as results_run_path

    return results_run_path(out, dataset, method, split, seed, variant)


LOCK = ".lock"


class RunDir:
    """Creates, guards and writes one run directory; ``run.json`` is rewritten atomically on change.

    ``writer=False`` (the non-zero ranks of a distributed run): reads work, writes do nothing.

    The writer holds an exclusive ``flock`` on ``<run dir>/.lock`` from :meth:`prepare` to
    :meth:`release` (the kernel drops it when the process dies), so a second ``osma-bench run`` into
    the same directory is refused. ``--overwrite`` of an existing run writes the new run into a
    sibling staging folder ``.<name>.new`` and swaps it in only when it completes (:meth:`commit`);
    a failed or interrupted overwrite leaves the old run as it was.
    """

    def __init__(self, path: Path, writer: bool = True) -> None:
        self.final = Path(path)
        self.writer = writer
        self.staging: Path | None = None
        self._lock_fd: int | None = None
        self._point_at(self.final)
        self.record: dict[str, Any] = {}

    def _point_at(self, path: Path) -> None:
        self.path = path
        self.run_json = self.path / "run.json"
        self.metrics = self.path / "metrics.json"
        self.scores = self.path / "scores.h5"
        self.log_file = self.path / "log.txt"
        self.last = self.path / checkpoint.LAST
        self.best = self.path / checkpoint.BEST

    def exists(self) -> bool:
        return self.final.is_dir() and any(p.name != LOCK for p in self.final.iterdir())

    def nothing_to_lose(self) -> bool:
        """A run that failed before finishing an epoch (say, in the method's constructor): no checkpoint,
        nothing a retry could continue, so a retry may replace it without ``--overwrite``."""
        if self.last.is_file() or not self.run_json.is_file():
            return False
        try:
            return read_json(self.run_json).get("status") == "failed"
        except (OsmaError, AttributeError):
            return False

    def prepare(self, resume: bool, overwrite: bool) -> None:
        """Lock the run directory; refuse an existing run unless ``resume`` or ``overwrite``
        (``overwrite`` stages the new run beside the old one; a run that failed before its first
        checkpoint has nothing to lose and is replaced the same way without it)."""
        blocker = next((p for p in (self.final, *self.final.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise OsmaError(f"{blocker}: exists and is not a directory; choose another --out")
        self.final.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._check_existing(resume, overwrite)
        except BaseException:
            self.release()
            raise

    def _check_existing(self, resume: bool, overwrite: bool) -> None:
        if not self.exists():
            return
        if overwrite or (not resume and self.nothing_to_lose()):
            foreign = [p.name for p in self.final.iterdir() if p.name not in RUN_FILES and not p.name.startswith(".")]
            if foreign:
                raise OsmaError(f"{self.final}: holds files that are not a run's ({', '.join(sorted(foreign)[:5])});"
                                " not removing it")
            staging = self.final.parent / f".{self.final.name}.new"
            if staging.exists():  # left by an overwrite that was killed; we hold the run's lock
                shutil.rmtree(staging)
            staging.mkdir()
            self.staging = staging
            self._point_at(staging)
            return
        if not resume:
            raise OsmaError(f"{self.final}: run directory exists; pass --resume to continue it or --overwrite to"
                            " start again")

    def _lock(self) -> None:
        import fcntl

        fd = os.open(self.final / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OsmaError(f"{self.final}: another osma-bench run is writing this run directory (it holds "
                            f"{LOCK}); wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def commit(self) -> None:
        """A staged overwrite that completed replaces the old run (no-op otherwise)."""
        if self.staging is None:
            return
        old = self.final.parent / f".{self.final.name}.old"
        if old.exists():
            shutil.rmtree(old)
        os.rename(self.final, old)
        os.rename(self.staging, self.final)
        self.staging = None
        self._point_at(self.final)
        shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        """A staged overwrite that failed is removed; the old run stays (no-op otherwise)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
            self._point_at(self.final)

    def release(self) -> None:
        """Drop the run directory's lock (also dropped by the kernel when the process ends)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def previous_record(self) -> dict[str, Any] | None:
        """The existing run.json (for --resume), or None."""
        if not self.run_json.is_file():
            return None
        record = read_json(self.run_json)
        if not isinstance(record, dict):
            raise OsmaError(f"{self.run_json}: field (top level): expected an object; use --overwrite")
        return record

    def write_record(self, **changes: Any) -> None:
        """Update and atomically rewrite run.json."""
        self.record.update(changes)
        if self.writer:
            write_json(self.run_json, self.record)

    def mark_failed(self, error: str) -> None:
        """Record ``status: failed`` even on a full disk, where the atomic rewrite of run.json needs
        room it may not have: then run.json is rewritten in place (its blocks are already allocated;
        the history is dropped if the record no longer fits). Never raises for a write problem."""
        self.record.update(status="failed", error=error)
        if not self.writer:
            return
        try:
            write_json(self.run_json, self.record)
        except (OsmaError, OSError):
            compact = {k: v for k, v in self.record.items() if k not in ("history", "library_versions", "config")}
            for record in (self.record, compact, {"status": "failed", "error": error[:500]}):
                try:
                    with open(self.run_json, "r+b") as fh:
                        data = (json.dumps(record, indent=2, default=str) + "\n").encode()
                        fh.seek(0)
                        fh.write(data)
                        fh.truncate()
                        fh.flush()
                    break
                except OSError:
                    continue
        try:
            self.log(f"failed: {error}")
        except OSError:
            pass

    def log(self, line: str) -> None:
        """Append a time-stamped line to log.txt (flushed at once, so a crash keeps what came before)."""
        if not self.writer:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.log_file, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {line}\n")
            fh.flush()


def code_version() -> str:
    """Package version plus the git commit of the source tree when there is one (``.dirty`` when
    tracked files differ from it); see :mod:`osma_bench.harness.provenance`."""
    from osma_bench.harness.provenance import code_version as version_of_tree

    return version_of_tree()


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries whose numbers a run depends on."""
    versions = {"python": platform.python_version()}
    for name in ("torch", "numpy", "h5py", "scikit-learn", "scipy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def method_version(method_cls: type) -> str:
    """The version of the package that provides ``method_cls`` (its ``version`` attribute wins)."""
    explicit = getattr(method_cls, "version", None)
    if explicit:
        return str(explicit)
    top = method_cls.__module__.split(".")[0]
    names = metadata.packages_distributions().get(top, [])
    for name in names:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return "unknown"
