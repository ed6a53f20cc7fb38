"""The run directory: ``results/<dataset>/<method>/split<k>/seed<s>/`` (docs/CONTRACTS.md section 4)."""

from __future__ import annotations

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


class RunDir:
    """Creates, guards and writes one run directory; ``run.json`` is rewritten atomically on change.

    ``writer=False`` (the non-zero ranks of a distributed run): reads work, writes do nothing.
    """

    def __init__(self, path: Path, writer: bool = True) -> None:
        self.path = Path(path)
        self.writer = writer
        self.run_json = self.path / "run.json"
        self.metrics = self.path / "metrics.json"
        self.scores = self.path / "scores.h5"
        self.log_file = self.path / "log.txt"
        self.last = self.path / checkpoint.LAST
        self.best = self.path / checkpoint.BEST
        self.record: dict[str, Any] = {}

    def exists(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())

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
        """Refuse an existing run unless ``resume`` or ``overwrite`` (or it has nothing to lose);
        ``overwrite`` clears it."""
        if not self.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            return
        if overwrite or (not resume and self.nothing_to_lose()):
            foreign = [p.name for p in self.path.iterdir() if p.name not in RUN_FILES and not p.name.startswith(".")]
            if foreign:
                raise OsmaError(f"{self.path}: holds files that are not a run's ({', '.join(sorted(foreign)[:5])});"
                                " not removing it")
            shutil.rmtree(self.path)
            self.path.mkdir(parents=True)
            return
        if not resume:
            raise OsmaError(f"{self.path}: run directory exists; pass --resume to continue it or --overwrite to"
                            " start again")

    def previous_record(self) -> dict[str, Any] | None:
        """The existing run.json (for --resume), or None."""
        return read_json(self.run_json) if self.run_json.is_file() else None

    def write_record(self, **changes: Any) -> None:
        """Update and atomically rewrite run.json."""
        self.record.update(changes)
        if self.writer:
            write_json(self.run_json, self.record)

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
