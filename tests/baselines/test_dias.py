"""DIAS: smoothed losses by hand, the copycat pull, a training step, a smoke run."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.dias import DIAS, copycat_pull_loss, simulated_sample_loss, smoothed_cross_entropy
from osma_bench.errors import OsmaError
from tests.baselines.conftest import make_method, roundtrip, smoke_run

LOGITS = torch.tensor([[0.0, math.log(3.0)]])  # probabilities 0.25, 0.75


def test_smoothed_cross_entropy_by_hand():
    label = torch.tensor([1])
    # smoothing 0.5, K = 2: target (0.25, 0.75)
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert float(smoothed_cross_entropy(LOGITS, label, 0.5)) == pytest.approx(expected)
    # smoothing 1: target uniform, the label does not matter
    uniform = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert float(smoothed_cross_entropy(LOGITS, label, 1.0)) == pytest.approx(uniform)
    assert float(smoothed_cross_entropy(LOGITS, torch.tensor([0]), 1.0)) == pytest.approx(uniform)


def test_simulated_sample_loss_is_the_mean_of_three():
    label = torch.tensor([1])
    a = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    b = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    got = simulated_sample_loss(LOGITS, LOGITS, LOGITS, label, smoothing=0.5, smoothing_final=1.0)
    assert float(got) == pytest.approx((2 * a + b) / 3)


def test_copycat_pull_loss_by_hand_and_detached():
    copy_maps = [torch.ones(1, 2, requires_grad=True), torch.full((1, 2), 3.0, requires_grad=True)]
    target_maps = [torch.zeros(1, 2, requires_grad=True), torch.zeros(1, 2, requires_grad=True)]
    loss = copycat_pull_loss(copy_maps, target_maps)
    assert float(loss.detach()) == pytest.approx((1.0 + 3.0) / 2)
    loss.backward()
    assert target_maps[0].grad is None and copy_maps[0].grad is not None


def test_method_trains_and_roundtrips(batch):
    torch.manual_seed(0)
    x, y = batch
    method = make_method(DIAS)
    copycat_before = [p.detach().clone() for p in method.copycat.model.parameters()]
    losses = method.train_epoch([(x, y)] * 2, 0)
    assert set(losses) == {"loss_d", "loss_g", "loss_uniform", "loss_cls", "loss_copycat", "loss_sim"}
    assert any(not torch.equal(a, b) for a, b in zip(copycat_before, method.copycat.model.parameters(), strict=True))
    pred = method.predict(x)
    assert torch.allclose(pred.score, pred.logits.double().softmax(dim=1).amax(dim=1))
    clone = make_method(DIAS)
    clone.load_state_dict(roundtrip(method.state_dict()))
    assert torch.equal(clone.predict(x).score, pred.score)
    with pytest.raises(OsmaError, match="copycat_bn"):
        make_method(DIAS, copycat_bn="other")


def test_smoke_run(synthetic_root, tmp_path):
    smoke_run(synthetic_root, tmp_path, "dias", epochs=1)
