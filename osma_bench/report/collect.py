"""Find the runs under a results folder (docs/CONTRACTS.md section 4) and read what each left.

``results/<dataset>/<method>/split<k>/seed<s>/`` holds ``run.json`` (written by the harness),
``metrics.json``, optionally ``clustering.json`` and ``scores.h5``. A run folder that holds a
``metrics.json`` but no ``run.json`` is a score file evaluated with ``osma-bench eval`` (a method
built elsewhere); its identity comes from the path and from ``metrics.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from osma_bench.errors import OsmaError
from osma_bench.evaluation.results_schema import validate_clustering, validate_metrics
from osma_bench.protocol import REPORT_GROUPS

GROUP_KEYS = REPORT_GROUPS


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
    #: A named change of settings (``--variant``), from the folder name ``<method>+<variant>``.
    variant: str | None = None
    #: The settings that make the run what it is (budget and method values; no runtime keys).
    identity: dict = field(default_factory=dict)
    #: Code version (``0.1.0+g<commit>[.dirty]``) and whether the tree had uncommitted changes.
    code_version: str = "unknown"
    dirty: bool = False
    #: A score file evaluated with ``osma-bench eval`` (no run.json).
    external: bool = False
    #: Best validation accuracy over epochs, and whether the selected epoch was the last one.
    best_val_accuracy: float | None = None
    selected_last: bool | None = None
    select_on: str = "val_accuracy"

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


def _fraction(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def check_metrics(m, path: Path | str = "metrics.json") -> str | None:
    """Why ``m`` is not a usable metrics.json content, or None when it is (the shared validator)."""
    try:
        validate_metrics(m, path)
    except OsmaError as exc:
        return str(exc)
    return None


def _identity(run: dict) -> dict:
    """A run's identity settings: the non-runtime values of ``hyperparameters``; for runs made
    before declarations existed, ``config`` without the keys that are runtime settings today."""
    from osma_bench.harness.config import RUNTIME_KEYS

    declared = run.get("hyperparameters")
    if isinstance(declared, dict):
        return {k: v.get("value") for k, v in declared.items() if isinstance(v, dict) and v.get("kind") != "runtime"}
    config = run.get("config")
    if isinstance(config, dict):
        return {k: v for k, v in config.items() if k not in RUNTIME_KEYS}
    return {}


def _read_provenance(rec: RunRecord, run: dict) -> None:
    prov = run.get("provenance") if isinstance(run.get("provenance"), dict) else {}
    version = prov.get("code_version") or run.get("code_version")
    rec.code_version = str(version) if version else "unknown"
    dirty = prov.get("git_dirty")
    rec.dirty = bool(dirty) if dirty is not None else rec.code_version.endswith(".dirty")
    rec.identity = _identity(run)
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    rec.select_on = str(config.get("select_on", "val_accuracy"))
    history = run.get("history")
    if isinstance(history, list):
        accs = [h.get("val_accuracy") for h in history if isinstance(h, dict)]
        accs = [float(a) for a in accs if _fraction(a)]
        if accs:
            rec.best_val_accuracy = max(accs)
        selected = run.get("selected_epoch")
        if isinstance(selected, int) and not isinstance(selected, bool) and len(history) > 1:
            rec.selected_last = selected == len(history) - 1  # one epoch (e.g. PRNU): no choice was made


def read_run(folder: Path, dataset: str, method: str, split: int, seed: int,
             variant: str | None = None) -> RunRecord:
    """Read one run folder into a :class:`RunRecord`."""
    rec = RunRecord(folder, dataset, method, split, seed, variant=variant)
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
        _read_provenance(rec, run)
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
        rec.external = True
        declared = metrics.get("protocol") if isinstance(metrics.get("protocol"), dict) else {}
        rec.profile = str(declared.get("profile") or "external")
        rec.identity = {"external": True, **{k: v for k, v in declared.items() if k != "profile"}}
        rec.code_version = "external"
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
    """Every run folder under ``results_dir`` (see :func:`osma_bench.results.run_folders`), sorted."""
    from osma_bench.results import run_folders

    runs = [read_run(path, dataset, method, split, seed, variant)
            for path, dataset, method, variant, split, seed in run_folders(Path(results_dir))]
    runs.sort(key=lambda r: (r.dataset, r.method, r.variant or "", r.split, r.seed))
    return runs
