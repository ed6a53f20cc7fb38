"""A tiny fake results tree (docs/CONTRACTS.md section 4) for report tests."""

from __future__ import annotations

import json

import pytest

SHA_A, SHA_B = "a" * 64, "b" * 64


def fake_metrics(acc, auc, oscr, sha=SHA_A, legacy=False, per_class=None):
    return {
        "closed_set": {"accuracy": acc, "macro_f1": acc, "n": 100},
        "open_set": {g: {"auroc": auc + d, "oscr": oscr + d, "tnr_at_95tpr": 0.5, "n_unknown": 10}
                     for g, d in (("seed", -0.1), ("arch", 0.0), ("dataset", 0.05), ("all", 0.0))},
        "per_class": per_class or [
            {"group": "seed", "class": "gan1_seed1", "n": 10, "auroc": auc - 0.1, "most_confused_with": "gan1"},
            {"group": "arch", "class": "arch0", "n": 10, "auroc": auc, "most_confused_with": "real"},
        ],
        "legacy": legacy, "method": "x", "split": 1, "dataset_sha256": sha,
    }


def write_run(root, method, split, seed, status="complete", metrics=None, sha=SHA_A, profile="mini",
              clustering=None, error=None, run_json=True, variant=None, settings=None, history=None,
              selected=None, version=None, dirty=False):
    """One fake run folder. ``settings``: identity values (as declared hyperparameters); ``history``:
    validation accuracies per epoch; ``selected``: the selected epoch; ``version``: code version."""
    folder = root / "mini" / (f"{method}+{variant}" if variant else method) / f"split{split}" / f"seed{seed}"
    folder.mkdir(parents=True)
    if run_json:
        run = {"status": status, "method": method, "dataset": "mini", "dataset_sha256": sha, "split": split,
               "seed": seed, "profile": profile}
        if error:
            run["error"] = error
        if settings is not None:
            run["hyperparameters"] = {k: {"value": v, "source": "--set", "kind": "method"} for k, v in settings.items()}
            run["hyperparameters"]["num_threads"] = {"value": seed + 1, "source": "--set", "kind": "runtime"}
        if history is not None:
            run["history"] = [{"epoch": i, "val_accuracy": a} for i, a in enumerate(history)]
            run["selected_epoch"] = len(history) - 1 if selected is None else selected
        if version is not None:
            run["provenance"] = {"code_version": version + (".dirty" if dirty else ""), "git_dirty": dirty}
        (folder / "run.json").write_text(json.dumps(run))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if clustering is not None:
        (folder / "clustering.json").write_text(json.dumps(clustering))
    return folder


@pytest.fixture
def results_tree(tmp_path):
    root = tmp_path / "results"
    clus = {"features": "penultimate", "results": [{"method": "kmeans", "k": 3, "purity": 0.8, "nmi": 0.6,
                                                    "ari": 0.5}]}
    write_run(root, "base", 1, 0, metrics=fake_metrics(0.90, 0.70, 0.65), clustering=clus)
    write_run(root, "base", 2, 0, metrics=fake_metrics(0.92, 0.74, 0.67))
    write_run(root, "pose", 1, 0, metrics=fake_metrics(0.95, 0.80, 0.75))
    write_run(root, "pose", 2, 0, metrics=fake_metrics(0.93, 0.84, 0.79))
    write_run(root, "pose", 3, 0, status="failed", error="Traceback...\nRuntimeError: out of memory")
    write_run(root, "dias", 1, 0, status="running")
    write_run(root, "base", 1, 1, metrics=fake_metrics(0.50, 0.50, 0.40, sha=SHA_B), sha=SHA_B)
    write_run(root, "ext", 1, 0, metrics=fake_metrics(0.91, 0.72, 0.66), run_json=False)
    write_run(root, "prnu", 1, 0, metrics=None)
    return root
