"""OpenMax: distances, alpha weights, recalibration on hand-made activations, selection, Base reuse."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from baselines.openmax import (
    DISTANCES,
    OpenMax,
    alpha_weights,
    auroc,
    distances_to,
    mean_activation_vectors,
    recalibrate,
    select_on_validation,
)
from baselines.weibull import WeibullTail
from osma_bench.errors import OsmaError
from osma_bench.harness import checkpoint
from osma_bench.methods.base_cnn import BaseMethod
from tests.baselines.conftest import make_method, roundtrip, smoke_run

STEP_AT_HALF = WeibullTail(math.inf, 10000.0, small_score=0.5)   # w = 1 from distance 0.5 on
NEVER = WeibullTail(math.inf, 10000.0, small_score=100.0)         # w = 0 below distance 100


def test_distances_by_hand():
    av, mav = np.array([[3.0, 4.0]]), np.array([3.0, 0.0])
    assert distances_to(av, mav, "euclidean")[0] == pytest.approx(4 / 200)
    assert distances_to(av, mav, "cosine")[0] == pytest.approx(1 - 9 / 15)
    assert distances_to(av, mav, "eucos")[0] == pytest.approx(0.02 + 0.4)


def test_alpha_weights_by_hand():
    np.testing.assert_allclose(alpha_weights(np.array([[1.0, 3.0, 2.0]]), 2), [[0.0, 1.0, 0.5]])
    np.testing.assert_allclose(alpha_weights(np.array([[1.0, 3.0, 2.0]]), 3), [[1 / 3, 1.0, 2 / 3]])


def test_recalibration_by_hand():
    av, dist = np.array([[2.0, 1.0]]), np.array([[1.0, 1.0]])
    # alpha 1: only class 0 is revised, with w = 1 -> v_hat = [0, 1], unknown = 2
    v_hat, unknown, probs = recalibrate(av, dist, [STEP_AT_HALF, NEVER], 1)
    np.testing.assert_allclose(v_hat, [[0.0, 1.0]])
    assert unknown[0] == pytest.approx(2.0)
    e = np.exp([0.0, 1.0, 2.0])
    np.testing.assert_allclose(probs, [e / e.sum()])
    # alpha 2, both tails fire: weights 1 and 1/2 -> v_hat = [0, 0.5], unknown = 2 + 0.5
    v_hat, unknown, _ = recalibrate(av, dist, [STEP_AT_HALF, STEP_AT_HALF], 2)
    np.testing.assert_allclose(v_hat, [[0.0, 0.5]])
    assert unknown[0] == pytest.approx(2.5)
    # a smooth tail: shape 2, scale 10,000, small score 0 -> W(0) = 1 - exp(-1)
    w = 1 - math.exp(-1)
    v_hat, unknown, _ = recalibrate(av, np.array([[0.0, 0.0]]), [WeibullTail(2.0, 10000.0, 0.0), NEVER], 1)
    np.testing.assert_allclose(v_hat, [[2 * (1 - w), 1.0]])
    assert unknown[0] == pytest.approx(2 * w)


def test_mavs_use_correct_images_only():
    av = np.array([[2.0, 0.0], [4.0, 0.0], [0.0, 1.0], [0.0, 3.0], [5.0, 1.0]])
    labels = np.array([0, 0, 1, 1, 1])  # the last one is misclassified
    mavs, used = mean_activation_vectors(av, labels, 2)
    np.testing.assert_allclose(mavs, [[3.0, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(used, [True, True, True, True, False])


def test_tie_aware_auroc():
    assert auroc(np.array([1.0, 0.5]), np.array([0.5, 0.0])) == pytest.approx(3.5 / 4)


def test_selection_on_validation_prefers_a_working_setting():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 6.0
    train_labels = np.repeat(np.arange(3), 40)
    train_av = centres[train_labels] + rng.normal(0, 0.5, (120, 3))
    val_labels = np.repeat(np.arange(3), 20)
    val_av = centres[val_labels] + rng.normal(0, 0.5, (60, 3))
    (tail, alpha, distance), criterion = select_on_validation(
        train_av, train_labels, val_av, val_labels, [5, 20], [1, 2, 10], ["eucos", "cosine"])
    assert set(criterion) == {f"{t}/{a}/{d}" for t in (5, 20) for a in (1, 2) for d in ("eucos", "cosine")}
    assert criterion[f"{tail}/{alpha}/{distance}"] == max(criterion.values())
    assert max(criterion.values()) > 0.9


def test_method_trains_finalizes_and_roundtrips(batch):
    torch.manual_seed(0)
    x, y = batch
    method = make_method(OpenMax, tail_size_grid=[3], alpha_grid=[1, 2])
    for epoch in range(2):
        method.train_epoch([(x, y)] * 2, epoch)
    assert torch.equal(method.predict(x).score, method.base.predict(x).score)  # before finalize: Base MSP
    method.finalize([(x, y)], [(x, y)])
    assert method.choice["selected_on"] == "validation" and method.choice["tail_size"] == 3
    pred = method.predict(x)
    assert pred.logits.shape == (12, 3) and pred.score.dtype == torch.float64
    assert bool(((pred.score >= 0) & (pred.score <= 1)).all())
    clone = make_method(OpenMax)
    clone.load_state_dict(roundtrip(method.state_dict()))
    assert torch.equal(clone.predict(x).score, pred.score)
    method.finalize([(x, y)])  # no validation data: the paper's defaults
    assert method.choice == {"tail_size": 20, "alpha": 3, "distance": "eucos", "selected_on": "defaults"}


def _write_base_run(path, base: BaseMethod, **record):
    path.mkdir(parents=True)
    checkpoint.save(path / checkpoint.BEST, {"epoch": 0, "state": base.state_dict()})
    full = {"method": "base", "status": "complete", "seed": 0, "config": dict(base.hp), **record}
    (path / "run.json").write_text(json.dumps(full))


def test_base_run_is_reused_and_checked(tmp_path, batch):
    torch.manual_seed(0)
    x, y = batch
    base = make_method(BaseMethod)
    base.train_epoch([(x, y)], 0)
    _write_base_run(tmp_path / "ok", base)
    method = make_method(OpenMax, base_run=str(tmp_path / "ok"))
    assert torch.equal(method.predict(x).score, base.predict(x).score)
    assert method.train_epoch([(x, y)], 0) == {}
    _write_base_run(tmp_path / "seed", base, seed=1)
    with pytest.raises(OsmaError, match="seed"):
        make_method(OpenMax, base_run=str(tmp_path / "seed"))
    _write_base_run(tmp_path / "pose", base, method="pose")
    with pytest.raises(OsmaError, match="not 'base'"):
        make_method(OpenMax, base_run=str(tmp_path / "pose"))
    with pytest.raises(OsmaError, match="no run.json"):
        make_method(OpenMax, base_run=str(tmp_path / "missing"))


def test_smoke_run(synthetic_root, tmp_path):
    smoke_run(synthetic_root, tmp_path, "openmax", epochs=1)


def test_smoke_run_saves_the_values_chosen_on_validation(synthetic_root, tmp_path):
    """Issue 15: the tail size, alpha and distance chosen on validation were saved nowhere."""
    result = smoke_run(synthetic_root, tmp_path, "openmax", epochs=1,
                       overrides={"tail_size_grid": "2,3", "alpha_grid": "1,2"})
    record = json.loads((result.path / "run.json").read_text())
    chosen = record["method_record"]
    assert chosen["selected_on"] == "validation"
    assert chosen["tail_size"] in (2, 3) and chosen["alpha"] in (1, 2) and chosen["distance"] in DISTANCES
    assert len(chosen["criterion"]) == 2 * 2 * len(DISTANCES)
    best = max(chosen["criterion"].values())
    assert chosen["criterion"][f"{chosen['tail_size']}/{chosen['alpha']}/{chosen['distance']}"] == best
    assert not any("test" in key for key in chosen)
