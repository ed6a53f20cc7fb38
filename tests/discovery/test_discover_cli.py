"""``osma-bench discover`` on fake finished runs whose features are planted in clusters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from osma_bench.cli import main
from osma_bench.discovery.evaluate import score_labels
from osma_bench.discovery.runs import true_cluster_ids
from osma_bench.evaluation.scores import write_scores

# (group, label) of every planted source: 3 known classes, 2 unseen seed, 1 arch, 1 dataset -> 7 sources
SOURCES = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (3, 0)]


def make_run(root: Path, method: str = "pose", features: bool = True, status: str = "complete",
             per_source: int = 12, seed: int = 0) -> Path:
    run = root / "results" / "synthetic" / method / "split1" / "seed0"
    run.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, size=(len(SOURCES), 8))
    group = np.repeat([g for g, _ in SOURCES], per_source)
    label = np.repeat([c for _, c in SOURCES], per_source)
    feats = np.repeat(centres, per_source, axis=0) + rng.normal(0, 0.3, size=(len(group), 8))
    n = len(group)
    write_scores(run / "scores.h5", index=np.arange(n), sha256=np.array([f"{i:064x}" for i in range(n)]),
                 group=group, label=label, logits=rng.normal(size=(n, 3)), score=rng.random(n),
                 features=feats if features else None, split=1, dataset_sha256="0" * 64, method=method,
                 num_classes=3)
    (run / "run.json").write_text(json.dumps({"status": status, "method": method, "dataset": "synthetic",
                                              "split": 1, "seed": 0, "profile": "smoke", "config": {}}))
    return run


def test_true_cluster_ids_one_per_group_label_pair():
    ids = true_cluster_ids(np.array([0, 0, 1, 1, 3, 0]), np.array([0, 1, 0, 0, 0, 0]))
    assert ids.tolist() == [0, 1, 2, 2, 3, 0]


def test_score_labels_hand_computed():
    # clusters {0,0,1} and {1,2,2}: purity (2 + 2) / 6; k = 2 clusters
    entry = score_labels(np.array([0, 0, 1, 1, 2, 2]), np.array([5, 5, 5, 9, 9, 9]), "x")
    assert entry["k"] == 2 and entry["purity"] == pytest.approx(4 / 6) and entry["method"] == "x"
    perfect = score_labels(np.array([0, 0, 1, 1]), np.array([3, 3, 1, 1]), "x")
    assert perfect["purity"] == perfect["nmi"] == perfect["ari"] == pytest.approx(1.0)


def test_discover_kmeans_on_planted_clusters(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["discover", "--run", str(run)]) == 0
    data = json.loads((run / "clustering.json").read_text())
    assert "pose" in data["features"] and len(data["results"]) == 1
    entry = data["results"][0]
    assert entry["method"] == "kmeans" and entry["k"] == len(SOURCES)
    assert entry["purity"] == pytest.approx(1.0) and entry["nmi"] == pytest.approx(1.0)
    assert entry["ari"] == pytest.approx(1.0)
    assert "kmeans" in capsys.readouterr().out
    # explicit k values; a rerun replaces entries with the same (method, k) and keeps the others
    assert main(["discover", "--run", str(run), "--k", "3", "--k", str(len(SOURCES))]) == 0
    results = json.loads((run / "clustering.json").read_text())["results"]
    assert [r["k"] for r in results] == [3, len(SOURCES)]
    assert results[0]["purity"] < 1.0  # 7 sources in 3 clusters cannot all be pure
    assert not list(run.glob(".clustering.json.*"))  # atomic write left no temporary file


def test_default_k_includes_girish_count(tmp_path):
    run = make_run(tmp_path)
    girish = run.parent.parent.parent / "girish" / "split1" / "seed0"
    girish.mkdir(parents=True)
    (girish / "clustering.json").write_text(json.dumps(
        {"features": "x", "results": [{"method": "girish", "k": 4, "purity": 0.5, "nmi": 0.5, "ari": 0.5}]}))
    assert main(["discover", "--run", str(run)]) == 0
    ks = [r["k"] for r in json.loads((run / "clustering.json").read_text())["results"]]
    assert ks == [4, len(SOURCES)]


@pytest.mark.parametrize("case, needle", [
    ("no_features", "has no 'features'"),
    ("running", "not 'complete'"),
    ("bad_k", "--k 1000"),
    ("missing", "run directory not found"),
    ("bad_method", "--method"),
    ("not_discovering", "does not discover unknown models itself; choose kmeans or one of girish"),
])
def test_discover_user_errors(tmp_path, capsys, case, needle):
    run = make_run(tmp_path, features=case != "no_features", status="running" if case == "running" else "complete")
    args = ["discover", "--run", str(run)]
    if case == "bad_k":
        args += ["--k", "1000"]
    if case == "missing":
        args = ["discover", "--run", str(tmp_path / "nope")]
    if case == "bad_method":
        args += ["--method", "dbscan"]
    if case == "not_discovering":
        args += ["--method", "base"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and needle in err and "Traceback" not in err


def test_girish_method_needs_a_girish_run(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["discover", "--run", str(run), "--method", "girish", "--data", str(tmp_path)]) == 2
    assert "needs a run of method 'girish'" in capsys.readouterr().err
