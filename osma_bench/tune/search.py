"""The search: measure (or read) Base's training time, run every grid point under the cap, choose
on known-class validation accuracy, write tune.json."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osma_bench.errors import OsmaError
from osma_bench.io import write_json
from osma_bench.tune.execute import PointOutcome, run_command, run_point
from osma_bench.tune.grid import grid_points, parse_grid, point_variant
from osma_bench.tune.record import read_record

#: The method whose training time sets the cap.
REFERENCE_METHOD = "base"


@dataclass
class TuneRequest:
    """Everything ``osma-bench tune`` is asked to do."""

    method: str
    data: Path
    split: int = 1
    seed: int = 0
    profile: str = "mini"
    grid: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    cap: float = 4.0
    base_run: Path | None = None
    out: Path = Path("results_tune")
    device: str = "auto"


def tune_json_path(out: Path, dataset: str, method: str, split: int, seed: int) -> Path:
    """Where the search's record goes: ``<out>/<dataset>/tune/<method>-split<k>-seed<s>.json``."""
    return Path(out) / dataset / "tune" / f"{method}-split{split}-seed{seed}.json"


def base_train_seconds(record: dict[str, Any], where: Path, dataset_sha256: str, split: int) -> float:
    """Base's training time from its run.json (a complete Base run of the same data and split)."""
    problems = []
    if record.get("method") != REFERENCE_METHOD:
        problems.append(f"method is {record.get('method')!r}, not {REFERENCE_METHOD!r}")
    if record.get("status") != "complete":
        problems.append(f"status is {record.get('status')!r}, not 'complete'")
    if record.get("dataset_sha256") != dataset_sha256:
        problems.append("made on other data")
    if record.get("split") != split:
        problems.append(f"split {record.get('split')} is not {split}")
    train_s = float((record.get("timings") or {}).get("train_s", 0.0))
    if train_s <= 0:
        problems.append("no training time in its timings")
    if problems:
        raise OsmaError(f"--base-run {where}: cannot set the cap: " + "; ".join(problems))
    return train_s


def choose(points: list[dict[str, Any]]) -> tuple[int | None, str]:
    """Index of the complete point with the best validation accuracy (ties: the earlier in grid
    order) and the reason, in words; ``None`` when no point completed."""
    complete = [i for i, p in enumerate(points) if p["status"] == "complete" and p["val_accuracy"] is not None]
    stopped = sum(p["status"] == "over_cap" for p in points)
    failed = sum(p["status"] == "failed" for p in points)
    if not complete:
        return None, f"no point completed ({stopped} over the cap, {failed} failed)"
    best = max(complete, key=lambda i: (points[i]["val_accuracy"], -i))
    ties = [i for i in complete if points[i]["val_accuracy"] == points[best]["val_accuracy"]]
    why = (f"best known-class validation accuracy {points[best]['val_accuracy']:.4f} among {len(complete)} "
           f"complete point(s)")
    if len(ties) > 1:
        why += f" (tied with {len(ties) - 1} other(s): the earliest in grid order wins)"
    if stopped or failed:
        why += f"; {stopped} stopped over the cap, {failed} failed"
    return best, why


def resolve_points(method_cls, profile: str, fixed: dict[str, str], points: list[dict[str, str]]
                   ) -> list[tuple[dict[str, Any], str]]:
    """Each point's typed settings and run-folder variant; every point resolves before anything runs,
    so a bad value fails at once. The variant covers the fixed settings that change a result too
    (another fixed ``--set`` must not resume a run made under the old one)."""
    from osma_bench.harness.config import resolve

    out = []
    for settings in points:
        resolved = resolve(method_cls, profile, {**fixed, **settings})
        identity = {k: resolved.values[k] for k in {**fixed, **settings} if not _runtime(k)}
        out.append(({k: resolved.values[k] for k in settings}, point_variant(identity)))
    return out


def tune(request: TuneRequest, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the search; returns (and writes) the tune.json record."""
    from osma_bench.harness.config import parse_overrides
    from osma_bench.harness.data import open_dataset
    from osma_bench.methods.registry import get_method
    from osma_bench.results import run_path

    if not request.cap > 0:
        raise OsmaError(f"--cap must be > 0 (a multiple of Base's training time), got {request.cap}")
    method_cls = get_method(request.method)
    fixed = parse_overrides(request.fixed)
    grid = parse_grid(request.grid, method_cls)
    clash = sorted(set(fixed) & {k for k, _ in grid})
    if clash:
        raise OsmaError(f"--set and --grid both give {', '.join(clash)}")
    points = grid_points(grid)
    resolved_points = resolve_points(method_cls, request.profile, fixed, points)
    dataset = open_dataset(request.data, request.split, verify=False)  # the card only; each run verifies
    name = dataset.name

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if request.base_run is not None:
        record = read_record(request.base_run)
        if record is None:
            raise OsmaError(f"--base-run {request.base_run}: no run.json")
        base_s = base_train_seconds(record, request.base_run, dataset.content_sha256, request.split)
        base_source = str(request.base_run)
    else:
        base_dir = run_path(request.out, name, REFERENCE_METHOD, request.split, request.seed)
        say(f"measuring Base's training time: {base_dir}")
        cmd = run_command(REFERENCE_METHOD, request.data, request.split, request.seed, request.profile,
                          request.out, None, {k: v for k, v in fixed.items() if _runtime(k)}, request.device)
        outcome = run_point(cmd, base_dir, None, base_dir.parent / f"seed{request.seed}.log")
        if outcome.status != "complete" or outcome.summary is None:
            raise OsmaError(f"the Base run that sets the cap failed ({outcome.note}); pass --base-run DIR")
        base_s = outcome.summary.train_s
        base_source = str(base_dir)
    cap_s = request.cap * base_s
    say(f"cap: {request.cap:g} x Base's {base_s:.1f} s of training = {cap_s:.1f} s per point")

    results: list[dict[str, Any]] = []
    for index, (settings, (values, variant)) in enumerate(zip(points, resolved_points, strict=True)):
        run_dir = run_path(request.out, name, request.method, request.split, request.seed, variant)
        cmd = run_command(request.method, request.data, request.split, request.seed, request.profile, request.out,
                          variant, {**fixed, **settings}, request.device)
        say(f"[{index + 1}/{len(points)}] {_show(values)}")
        outcome = run_point(cmd, run_dir, cap_s, run_dir.parent / f"seed{request.seed}.log")
        results.append(_point(values, variant, run_dir, request.out, outcome))
        shown = "-" if results[-1]["val_accuracy"] is None else f"{results[-1]['val_accuracy']:.4f}"
        say(f"    {outcome.status}: val accuracy {shown}, training {results[-1]['train_s']:.1f} s"
            + (f" ({outcome.note})" if outcome.note else ""))

    best, why = choose(results)
    record = {
        "method": request.method, "dataset": name, "dataset_sha256": dataset.content_sha256,
        "split": request.split, "seed": request.seed, "profile": request.profile,
        "criterion": "known-class validation accuracy of the model each run kept (run.json; test data never read)",
        "fixed": fixed, "grid": {k: v for k, v in grid},
        "cap": {"multiple": request.cap, "base_train_s": base_s, "base_run": base_source, "cap_train_s": cap_s},
        "points": results,
        "chosen": None if best is None else {"index": best, "settings": results[best]["settings"],
                                             "val_accuracy": results[best]["val_accuracy"]},
        "why": why, "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = tune_json_path(request.out, name, request.method, request.split, request.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    say(f"chosen: {_show(results[best]['settings']) if best is not None else 'nothing'} ({why})")
    say(f"written: {path}")
    return record


def _runtime(key: str) -> bool:
    from osma_bench.harness.config import RUNTIME_KEYS

    return key in RUNTIME_KEYS


def _point(values: dict[str, Any], variant: str, run_dir: Path, out: Path, outcome: PointOutcome) -> dict[str, Any]:
    summary = outcome.summary
    try:
        where = str(run_dir.relative_to(out))
    except ValueError:
        where = str(run_dir)
    return {"settings": values, "variant": variant, "run": where, "status": outcome.status,
            "val_accuracy": None if summary is None or outcome.status != "complete" else summary.val_accuracy,
            "train_s": 0.0 if summary is None else summary.train_s,
            "epochs_completed": 0 if summary is None else summary.epochs_completed,
            "epochs": None if summary is None else summary.epochs,
            "selected_epoch": None if summary is None else summary.selected_epoch,
            "wall_s": outcome.wall_s, "note": outcome.note}


def _show(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())
