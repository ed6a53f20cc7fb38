"""evaluate_scores / evaluate_file and the ``osma-bench eval`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from osma_bench.cli import main
from osma_bench.evaluation import metrics as M
from osma_bench.evaluation.evaluate import evaluate_file, evaluate_scores
from osma_bench.evaluation.scores import make_table, write_scores
from tests.evaluation.conftest import fake_scores_for_split


def test_evaluate_scores_hand_case():
    # 3 known test images (K = 2), 2 unseen-seed and 1 unseen-arch image; no dataset group.
    table = make_table(
        index=np.arange(6), sha256=[f"{i:064x}" for i in range(6)], group=[0, 0, 0, 1, 1, 2],
        label=[0, 1, 1, 0, 0, 0],
        logits=[[2, 0], [0, 1], [3, 0], [0, 1], [1, 0], [0, 2]], score=[0.9, 0.8, 0.4, 0.5, 0.1, 0.95],
        split=1, dataset_sha256="a" * 64, method="hand", num_classes=2)
    out = evaluate_scores(table, known_classes=["real", "gan"], unknown_classes={"seed": ["s0"], "arch": ["a0"]})
    assert out["closed_set"] == {"accuracy": pytest.approx(2 / 3), "macro_f1": pytest.approx(2 / 3), "n": 3}
    assert set(out["open_set"]) == {"seed", "arch", "all"}
    assert out["open_set"]["seed"]["auroc"] == pytest.approx(5 / 6)  # pairs won: 0.9>0.5,0.1; 0.8>0.5,0.1; 0.4>0.1
    assert out["open_set"]["seed"]["oscr"] == pytest.approx(4 / 6)  # correct known: 0.9, 0.8
    assert out["open_set"]["arch"]["auroc"] == 0.0
    assert out["open_set"]["all"]["n_unknown"] == 3
    assert out["per_class"] == [
        {"group": "seed", "class": "s0", "n": 2, "auroc": pytest.approx(5 / 6), "most_confused_with": "real"},
        {"group": "arch", "class": "a0", "n": 1, "auroc": 0.0, "most_confused_with": "gan"},
    ]
    assert out["legacy"] is False and "bootstrap" not in out
    legacy = evaluate_scores(table, legacy=True)
    assert legacy["legacy"] is True and legacy["per_class"][0]["class"] == "class0"


def test_evaluate_file_and_order_invariance(tmp_path, synthetic_root):
    args = fake_scores_for_split(synthetic_root, 2, seed=3)
    first = evaluate_file(write_scores(tmp_path / "a.h5", **args), synthetic_root, 2, bootstrap=20)
    perm = np.random.default_rng(0).permutation(args["index"].size)
    shuffled = {k: (v[perm] if isinstance(v, np.ndarray) else v) for k, v in args.items()}
    second = evaluate_file(write_scores(tmp_path / "b.h5", **shuffled), synthetic_root, 2, bootstrap=20)
    assert first == second
    known = args["group"] == 0
    k, u = args["score"][known], args["score"][~known]
    assert first["open_set"]["all"]["auroc"] == M.auroc(k, u)
    assert set(first["bootstrap"]["open_set"]) == {"seed", "arch", "dataset", "all"}


def test_cli_eval_writes_metrics(tmp_path, synthetic_root, capsys):
    path = write_scores(tmp_path / "run" / "scores.h5", **fake_scores_for_split(synthetic_root, 1))
    out = tmp_path / "out"
    rc = main(["eval", "--scores", str(path), "--data", str(synthetic_root), "--split", "1", "--out", str(out),
               "--legacy"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["legacy"] is True and metrics["closed_set"]["n"] == 18
    assert main(["eval", "--scores", str(path), "--data", str(synthetic_root), "--split", "1"]) == 0
    assert (path.parent / "metrics.json").is_file()


def test_cli_eval_refuses_bad_file_with_one_line(tmp_path, synthetic_root, capsys):
    bad = tmp_path / "scores.h5"
    bad.write_bytes(b"\x80\x04\x95pickle")
    rc = main(["eval", "--scores", str(bad), "--data", str(synthetic_root), "--split", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "not an HDF5 file" in err and "Traceback" not in err
    assert not (tmp_path / "metrics.json").exists()


def test_cli_eval_bootstrap_prints_its_intervals(tmp_path, synthetic_root, capsys):
    path = write_scores(tmp_path / "run" / "scores.h5", **fake_scores_for_split(synthetic_root, 1))
    capsys.readouterr()
    assert main(["eval", "--scores", str(path), "--data", str(synthetic_root), "--split", "1", "--bootstrap",
                 "30"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    metrics = json.loads((path.parent / "metrics.json").read_text())
    lo, hi = metrics["bootstrap"]["open_set"]["all"]["auroc"]
    assert f"[{100 * lo:.2f}, {100 * hi:.2f}]" in out
    assert "AUC 95% CI" in out and "percentiles of 30 bootstrap resamples (seed 0)" in out
