"""Cluster a finished run's test features and record purity / NMI / ARI in ``clustering.json``.

POSE's Table 3 protocol: k-means on the features of the known test images and every unknown
image, at k = the true number of source models (known + unknown classes) and at k = the number
of clusters Girish et al. return; scored against the true source model of every image.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from osma_bench.discovery.runs import CLUSTERING_FILE, RunFeatures, girish_cluster_count, read_clustering
from osma_bench.discovery.stages import kmeans_labels
from osma_bench.errors import OsmaError
from osma_bench.evaluation.metrics import clustering_scores
from osma_bench.io import write_json


def default_ks(run: RunFeatures) -> list[int]:
    """The true class count and, when a Girish discovery exists for this split and seed, its count."""
    ks = [run.num_true_clusters]
    found = girish_cluster_count(run.run_dir)
    if found is not None and found not in ks:
        ks.append(found)
    return ks


def check_k(k: int, n: int) -> int:
    """A usable k for ``n`` rows, or OsmaError naming the bound."""
    if not 1 <= k <= n:
        raise OsmaError(f"--k {k}: must be between 1 and the number of test images ({n})")
    return int(k)


def kmeans_results(run: RunFeatures, ks: Iterable[int], seed: int = 0) -> list[dict]:
    """k-means on the run's features at each k; one result entry per k."""
    features = run.features
    results = []
    for k in ks:
        pred = kmeans_labels(features, check_k(k, len(features)), seed=seed)
        results.append({"method": "kmeans", "k": int(k), **clustering_scores(run.true_ids, pred)})
    return results


def score_labels(true_ids: np.ndarray, labels: np.ndarray, method: str) -> dict:
    """A result entry for a finished clustering (k = its number of distinct clusters)."""
    return {"method": method, "k": int(np.unique(labels).size), **clustering_scores(true_ids, labels)}


def record_results(run: RunFeatures, results: list[dict]) -> Path:
    """Merge ``results`` into the run's ``clustering.json`` (same method and k replaced), atomically."""
    previous = read_clustering(run.run_dir) or {"results": []}
    new_keys = {(r["method"], r["k"]) for r in results}
    kept = [r for r in previous["results"]
            if isinstance(r, dict) and (r.get("method"), r.get("k")) not in new_keys]
    merged = sorted(kept + results, key=lambda r: (str(r.get("method")), int(r.get("k", 0))))
    path = run.run_dir / CLUSTERING_FILE
    write_json(path, {"features": run.describe_features(), "results": merged})
    return path
