"""Find the runs under a results folder (docs/CONTRACTS.md section 4) and read what each left.

``results/<dataset>/<method>/split<k>/seed<s>/`` holds ``run.json`` (written by the harness),
``metrics.json``, optionally ``clustering.json`` and ``scores.h5``. A run folder that holds a
``metrics.json`` but no ``run.json`` is a score file evaluated with ``osma-bench eval`` (a method
built elsewhere); its identity comes from the path and from ``metrics.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from osma_bench.errors import OsmaError
from osma_bench.evaluation.results_schema import validate_clustering, validate_metrics

_SPLIT = re.compile(r"^split(\d+)$")
_SEED = re.compile(r"^seed(\d+)$")
GROUP_KEYS = ("seed", "arch", "dataset", "all")


@dataclass
class RunRecord:
    """One run folder: identity, protocol, and its metrics (``problem`` says why it is unusable)."""

    path: Path
    dataset: str
    method: str
    split: int
    seed: int
    status: str = "missing"
    profile: str = "-"
    dataset_sha256: str = ""
    legacy: bool = False
    metrics: dict | None = None
    clustering: dict | None = None
    problem: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None and self.metrics is not None

    @property
    def scores_path(self) -> Path:
        return self.path / "scores.h5"


def _read(path: Path) -> tuple[object | None, str | None]:
    try:
        return json.loads(path.read_text()), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} is unreadable ({exc.__class__.__name__})"


def check_metrics(m, path: Path | str = "metrics.json") -> str | None:
    """Why ``m`` is not a usable metrics.json content, or None when it is (the shared validator)."""
    try:
        validate_metrics(m, path)
    except OsmaError as exc:
        return str(exc)
    return None


def read_run(folder: Path, dataset: str, method: str, split: int, seed: int) -> RunRecord:
    """Read one run folder into a :class:`RunRecord`."""
    rec = RunRecord(folder, dataset, method, split, seed)
    run_path, metrics_path = folder / "run.json", folder / "metrics.json"
    run = None
    if run_path.is_file():
        run, err = _read(run_path)
        if err or not isinstance(run, dict):
            rec.problem = err or "run.json is not a JSON object"
            return rec
        rec.status = str(run.get("status", "unknown"))
        rec.profile = str(run.get("profile", "-"))
        rec.dataset_sha256 = str(run.get("dataset_sha256", ""))
        if rec.status != "complete":
            error = run.get("error")
            rec.problem = f"status {rec.status}" + (f": {str(error).splitlines()[-1][:200]}" if error else "")
            return rec
    if not metrics_path.is_file():
        rec.problem = ("complete, but metrics.json is missing" if run is not None
                       else "neither run.json nor metrics.json")
        return rec
    metrics, err = _read(metrics_path)
    err = err or check_metrics(metrics, metrics_path)
    if err:
        rec.problem = err
        return rec
    if run is None:
        rec.status = "complete"
        rec.profile = "external"
    sha = str(metrics.get("dataset_sha256", "") or "")
    if sha and rec.dataset_sha256 and sha != rec.dataset_sha256:
        rec.problem = "run.json and metrics.json name different dataset versions"
        return rec
    rec.dataset_sha256 = rec.dataset_sha256 or sha
    rec.legacy = bool(metrics.get("legacy", False))
    rec.metrics = metrics
    clustering_path = folder / "clustering.json"
    if clustering_path.is_file():
        clustering, err = _read(clustering_path)
        if err is None:
            try:
                rec.clustering = validate_clustering(clustering, clustering_path)
            except OsmaError as exc:
                err = str(exc)
        if err is not None:
            rec.extra["clustering_problem"] = err
    return rec


def collect_runs(results_dir: str | Path) -> list[RunRecord]:
    """Every ``<dataset>/<method>/split<k>/seed<s>`` folder under ``results_dir``, in sorted order."""
    root = Path(results_dir)
    runs = []
    for seed_dir in sorted(root.glob("*/*/split*/seed*")):
        split_m, seed_m = _SPLIT.match(seed_dir.parent.name), _SEED.match(seed_dir.name)
        if not seed_dir.is_dir() or not split_m or not seed_m:
            continue
        dataset, method = seed_dir.parent.parent.parent.name, seed_dir.parent.parent.name
        runs.append(read_run(seed_dir, dataset, method, int(split_m.group(1)), int(seed_m.group(1))))
    runs.sort(key=lambda r: (r.dataset, r.method, r.split, r.seed))
    return runs
