"""A finished run as discovery sees it: its record, its test-set features and the true clusters.

Reads ``run.json`` and ``scores.h5`` (docs/CONTRACTS.md sections 3 and 4). The true cluster of
a test image is its source model: one id per distinct ``(group, label)`` pair, so the known test
classes and every unknown class of every group each form one cluster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from osma_bench.errors import OsmaError
from osma_bench.evaluation.scores import ScoreTable, read_scores
from osma_bench.io import read_json

CLUSTERING_FILE = "clustering.json"


def true_cluster_ids(group: np.ndarray, label: np.ndarray) -> np.ndarray:
    """A distinct id (``0 .. n-1``) for every distinct ``(group, label)`` pair, in sorted pair order."""
    pairs = np.stack([np.asarray(group, np.int64), np.asarray(label, np.int64)], axis=1)
    _, ids = np.unique(pairs, axis=0, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


@dataclass
class RunFeatures:
    """A run directory's record and the test-set rows of its score file."""

    run_dir: Path
    record: dict
    table: ScoreTable
    true_ids: np.ndarray

    @property
    def features(self) -> np.ndarray:
        return self.table.features

    @property
    def num_true_clusters(self) -> int:
        return int(self.true_ids.max()) + 1 if self.true_ids.size else 0

    def describe_features(self) -> str:
        """What the clustered vectors are, for ``clustering.json``'s ``features`` field."""
        dim = self.table.features.shape[1]
        return f"scores.h5 features of {self.table.method} ({dim}-d, {len(self.true_ids)} test images)"


def load_run(run_dir: str | os.PathLike, need_features: bool = True) -> RunFeatures:
    """Read a finished run; OsmaError when it is missing, unfinished, or has no features."""
    from osma_bench.results import require_complete

    run_dir = Path(run_dir)
    record = require_complete(run_dir, need_metrics=False)
    table = read_scores(run_dir / "scores.h5")
    if need_features and table.features is None:
        raise OsmaError(f"{run_dir / 'scores.h5'}: has no 'features' dataset; {table.method} does not "
                        "export features, so its test images cannot be clustered")
    if len(table.index) < 2:
        raise OsmaError(f"{run_dir / 'scores.h5'}: fewer than 2 test images, nothing to cluster")
    return RunFeatures(run_dir, record, table, true_cluster_ids(table.group, table.label))


def sibling_run(run_dir: Path, method: str) -> Path:
    """The same dataset / split / seed run of another method (results/<dataset>/<method>/split<k>/seed<s>)."""
    return run_dir.parent.parent.parent / method / run_dir.parent.name / run_dir.name


def read_clustering(run_dir: Path) -> dict | None:
    """A run's ``clustering.json``, or None when it has none."""
    path = Path(run_dir) / CLUSTERING_FILE
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise OsmaError(f"{path}: expected an object with a 'results' list (docs/CONTRACTS.md section 4)")
    return data


def girish_cluster_count(run_dir: Path) -> int | None:
    """The number of clusters Girish et al. returned on this dataset / split / seed, if discovered already.

    Looks at this run's own ``clustering.json`` first (when it is a Girish run), then at the
    sibling Girish run's.
    """
    for candidate in (Path(run_dir), sibling_run(Path(run_dir), "girish")):
        data = read_clustering(candidate)
        if data is None:
            continue
        for entry in data["results"]:
            if isinstance(entry, dict) and entry.get("method") == "girish" and isinstance(entry.get("k"), int):
                return int(entry["k"])
    return None
