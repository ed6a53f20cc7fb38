"""``run --set legacy=true``: metrics.json holds the official POSE evaluation's numbers in a labelled
block beside the tie-aware ones, equal to an independent implementation of the official code."""

from __future__ import annotations

import json

import h5py
import numpy as np
import torch

from osma_bench.cli import main
from osma_bench.evaluation.evaluate import LEGACY_NOTE, evaluate_file
from tests.evaluation.official_reference import official_auroc, official_compute_oscr, official_tnr


def test_legacy_run_writes_both_labelled_blocks(synthetic, tmp_path, capsys):
    code = main(["run", "--method", "pose", "--data", str(synthetic), "--profile", "smoke", "--device", "cpu",
                 "--out", str(tmp_path), "--no-progress", "--set", "legacy=true", "--set", "num_threads=1",
                 "--variant", "legacy"])
    assert code in (0, None)
    path = tmp_path / "syn" / "pose+legacy" / "split1" / "seed0"
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["legacy"] is False  # the top level is the tie-aware definition (pooled as such)
    block = metrics["legacy_metrics"]
    assert block["note"] == LEGACY_NOTE and block["numpy"] == np.__version__
    assert set(block["open_set"]) == set(metrics["open_set"]) == {"seed", "arch", "dataset", "all"}
    assert "official evaluation (legacy): accuracy" in " ".join(capsys.readouterr().out.split())
    assert "official evaluation (legacy): accuracy" in (path / "log.txt").read_text()

    with h5py.File(path / "scores.h5") as fh:
        group, label, logits, score = fh["group"][:], fh["label"][:], fh["logits"][:], fh["score"][:]
    probs = torch.from_numpy(logits).softmax(dim=1).numpy()  # the official float32 probabilities
    assert np.array_equal(score, probs.max(axis=1).astype(np.float64))  # the legacy score is that MSP
    known = group == 0
    pred_k = probs[known]
    assert block["closed_set"]["accuracy"] == np.mean(pred_k.argmax(axis=1) == label[known])
    for g, code_ in (("seed", 1), ("arch", 2), ("dataset", 3), ("all", None)):
        pred_u = probs[group > 0] if code_ is None else probs[group == code_]
        x1, x2 = pred_k.max(axis=1), pred_u.max(axis=1)
        assert block["open_set"][g]["auroc"] == official_auroc(x1, x2)
        assert block["open_set"][g]["tnr_at_95tpr"] == official_tnr(x1, x2)
        assert block["open_set"][g]["oscr"] == official_compute_oscr(pred_k, pred_u, label[known])

    # a run without legacy (or eval without it) has no such block
    assert "legacy_metrics" not in evaluate_file(path / "scores.h5", synthetic, 1)
