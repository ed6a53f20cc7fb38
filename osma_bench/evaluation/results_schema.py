"""The schema of a run's result files, checked before a report or a display uses them:
``metrics.json`` (written by ``run``/``eval``) and ``clustering.json`` (written by ``discover``).

One validator per format, shared by every reader; a bad file is one :class:`OsmaError` naming the
file and the field (``report`` lists the run as unusable and goes on with the others).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from osma_bench.validate import Fields

GROUP_KEYS = ("seed", "arch", "dataset", "all")
#: Largest cluster count a clustering.json may claim.
MAX_K = 10**6


def _fraction(f: Fields, obj: dict, key: str, where: str, required: bool = True, lo: float = 0.0) -> None:
    if key in obj or required:
        f.number(f.key(obj, key, where), f"{where}.{key}", lo, 1.0)


def validate_metrics(metrics: Any, path: str | Path) -> dict:
    """``metrics`` (parsed metrics.json) if it follows the schema, else OsmaError naming the field."""
    f = Fields(path)
    f.mapping(metrics, "(top level)")
    closed = f.mapping(f.key(metrics, "closed_set"), "closed_set")
    _fraction(f, closed, "accuracy", "closed_set")
    _fraction(f, closed, "macro_f1", "closed_set", required=False)
    if "n" in closed:
        f.integer(closed["n"], "closed_set.n", 0)
    open_set = f.mapping(f.key(metrics, "open_set"), "open_set")
    for group, values in open_set.items():
        where = f"open_set.{group}"
        if group not in GROUP_KEYS:
            raise f.fail("open_set", f"groups among {', '.join(GROUP_KEYS)}", group)
        f.mapping(values, where)
        for key in ("auroc", "oscr"):
            _fraction(f, values, key, where)
        _fraction(f, values, "tnr_at_95tpr", where, required=False)
        if "n_unknown" in values:
            f.integer(values["n_unknown"], f"{where}.n_unknown", 0)
    for i, entry in enumerate(f.seq(metrics.get("per_class") or [], "per_class")):
        where = f"per_class[{i}]"
        f.string(f.key(entry, "group", where), f"{where}.group")
        f.string(f.key(entry, "class", where), f"{where}.class")
        _fraction(f, entry, "auroc", where)
        if "n" in entry:
            f.integer(entry["n"], f"{where}.n", 0)
    boot = metrics.get("bootstrap")
    if boot is not None:
        f.mapping(boot, "bootstrap")
        if "n" in boot:
            f.integer(boot["n"], "bootstrap.n", 1)
        for group, values in f.mapping(boot.get("open_set", {}), "bootstrap.open_set").items():
            for key, interval in f.mapping(values, f"bootstrap.open_set.{group}").items():
                where = f"bootstrap.open_set.{group}.{key}"
                if not isinstance(interval, list):
                    continue  # other bootstrap facts (resample count, seed) are not intervals
                if len(interval) != 2:
                    raise f.fail(where, "an interval [low, high]", interval)
                for j, bound in enumerate(interval):
                    f.number(bound, f"{where}[{j}]", 0.0, 1.0)
    if "legacy" in metrics and not isinstance(metrics["legacy"], bool):
        raise f.fail("legacy", "true or false", metrics["legacy"])
    if "split" in metrics:
        f.integer(metrics["split"], "split", 1)
    for key in ("method", "dataset_sha256"):
        if key in metrics and metrics[key] is not None:
            f.string(metrics[key], key)
    return metrics


def validate_clustering(clustering: Any, path: str | Path) -> dict:
    """``clustering`` (parsed clustering.json) if it follows the schema, else OsmaError naming the field."""
    f = Fields(path)
    f.mapping(clustering, "(top level)")
    for i, entry in enumerate(f.seq(f.key(clustering, "results"), "results")):
        where = f"results[{i}]"
        f.mapping(entry, where)
        if "method" in entry:
            f.string(entry["method"], f"{where}.method")
        f.integer(f.key(entry, "k", where), f"{where}.k", 1, MAX_K)
        _fraction(f, entry, "purity", where)
        _fraction(f, entry, "nmi", where)
        _fraction(f, entry, "ari", where, lo=-1.0)
    return clustering
