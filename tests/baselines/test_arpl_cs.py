"""ARPL+CS: reciprocal-point logits and losses by hand, the DCGAN, the auxiliary BatchNorm, a smoke run."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from baselines.arpl_cs import ARPLCS, ReciprocalPoints, arpl_loss, confusing_sample_loss
from baselines.gan import Discriminator, Generator, add_auxiliary_batchnorm, route_batchnorm
from tests.baselines.conftest import make_method, roundtrip, smoke_run


def points_2d() -> ReciprocalPoints:
    points = ReciprocalPoints(2, 2)
    with torch.no_grad():
        points.points.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    return points


def test_reciprocal_point_logits_by_hand():
    points = points_2d()
    # x = (1, 1): distances (0 + 1) / 2 = 0.5 to both, dot products 1 -> logits -0.5, -0.5
    assert torch.allclose(points.logits(torch.tensor([[1.0, 1.0]])), torch.tensor([[-0.5, -0.5]]))
    # x = (2, 0): distances 0.5 and 2.5, dot products 2 and 0 -> logits -1.5, 2.5
    assert torch.allclose(points.logits(torch.tensor([[2.0, 0.0]])), torch.tensor([[-1.5, 2.5]]))


def test_arpl_loss_by_hand():
    points = points_2d()
    logits, loss = arpl_loss(points, torch.tensor([[2.0, 0.0]]), torch.tensor([1]), temperature=1.0, weight_pl=0.1)
    ce = math.log(1 + math.exp(-4.0))           # CE([-1.5, 2.5], 1)
    radius_term = 0.1 * (2.5 - 0.0 + 1.0)        # max(0, ||x - P_1||^2 / D - R + 1), R = 0
    assert float(loss.detach()) == pytest.approx(ce + radius_term)
    loss.backward()
    assert points.radius.grad is not None and float(points.radius.grad) == pytest.approx(-0.1)


def test_confusing_sample_loss_by_hand():
    points = points_2d()
    # equal distances -> uniform softmax -> exp(-ln 2) = 1/2
    assert float(confusing_sample_loss(points, torch.tensor([[1.0, 1.0]])).detach()) == pytest.approx(0.5)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_dcgan_shapes(size):
    torch.manual_seed(0)
    gen, disc = Generator(size, nz=16, ngf=4), Discriminator(size, ndf=4)
    fake = gen(gen.sample_noise(3, torch.device("cpu")))
    assert fake.shape == (3, 3, size, size) and float(fake.detach().abs().max()) <= 1.0
    assert disc(fake).shape == (3,)
    with pytest.raises(ValueError):
        Generator(48)


def test_auxiliary_batchnorm_keeps_statistics_apart():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    assert add_auxiliary_batchnorm(model) == 1
    routed = model[1]
    with route_batchnorm(model, "aux"):
        model(torch.randn(4, 3, 8, 8) + 5.0)
    assert routed.route == "main"
    assert float(routed.main.running_mean.abs().sum()) == 0.0 and float(routed.aux.running_mean.abs().sum()) > 0


def test_method_trains_and_roundtrips(batch):
    torch.manual_seed(0)
    x, y = batch
    method = make_method(ARPLCS)
    optimised = {id(p) for group in method.optimizer.param_groups for p in group["params"]}
    assert id(method.points.points) in optimised and id(method.points.radius) in optimised
    losses = method.train_epoch([(x, y)] * 2, 0)
    assert set(losses) == {"loss_arpl", "loss_cs", "loss_g", "loss_d"}
    pred = method.predict(x)
    assert torch.allclose(pred.score, pred.logits.double().amax(dim=1))
    clone = make_method(ARPLCS)
    clone.load_state_dict(roundtrip(method.state_dict()))
    assert torch.equal(clone.predict(x).score, pred.score)


def test_smoke_run(synthetic_root, tmp_path):
    smoke_run(synthetic_root, tmp_path, "arpl_cs", epochs=1)
