"""RepMix (ECCV 2022): the mixing layer, gated heads, mixed losses, corruptions, pretrained offline, smoke run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.repmix import CORRUPTIONS, MixingLayer, RepMix, RepMixNet, corrupt, mixed_losses
from osma_bench.errors import OsmaError
from tests.baselines.conftest import make_method, roundtrip, smoke_run


def test_mixing_layer_with_given_weights():
    layer = MixingLayer(num=2, beta=0.4)
    x = torch.arange(4 * 3, dtype=torch.float32).view(4, 3)  # samples (0, 1) and (2, 3) mix
    weights = torch.tensor([[0.25, 0.75], [1.0, 0.0]])
    mixed, used = layer(x, weights)
    assert torch.allclose(mixed, torch.stack([0.25 * x[0] + 0.75 * x[1], x[2]]))
    assert torch.equal(used, weights)
    with pytest.raises(ValueError, match="multiple"):
        layer(torch.zeros(3, 2))


def test_mixing_layer_dirichlet_weights():
    layer = MixingLayer(num=2, beta=0.4)
    gen = torch.Generator().manual_seed(0)
    w = layer.sample_weights(20000, gen)
    assert torch.allclose(w.sum(1), torch.ones(20000)) and (w >= 0).all()
    # Dirichlet(0.4, 0.4): marginal Beta(0.4, 0.4): mean 1/2, variance 1/(4 * 1.8)
    assert abs(float(w[:, 0].mean()) - 0.5) < 0.01
    assert abs(float(w[:, 0].var()) - 1 / 7.2) < 0.01
    again = layer.sample_weights(5, torch.Generator().manual_seed(3))
    assert torch.equal(again, layer.sample_weights(5, torch.Generator().manual_seed(3)))  # seeded
    # feature maps: same weights for every channel and position
    fmap = torch.randn(4, 2, 3, 3)
    mixed, used = layer(fmap, None, gen)
    assert torch.allclose(mixed[1], used[1, 0] * fmap[2] + used[1, 1] * fmap[3], atol=1e-6)


def test_gated_heads_and_no_mixing_at_test():
    net = RepMixNet(4, depth=18, width=8, pretrained=False, d_embed=16).eval()
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    emb, used = net.embed(x, mix=False)
    assert used is None and emb.shape == (6, 16)
    gated, detection = net.heads(emb)
    p = detection.softmax(1)
    raw = net.attribution(emb)
    assert torch.allclose(gated[:, 0], raw[:, 0] * p[:, 0]) and torch.allclose(gated[:, 1:], raw[:, 1:] * p[:, 1:2])
    # mixing a sample with itself changes nothing (eval mode)
    doubled = x.repeat_interleave(2, dim=0)
    mixed, _ = net.embed(doubled, mix=True, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(mixed, emb, atol=1e-5)


def test_mixed_losses_by_hand():
    gated = torch.tensor([[2.0, 0.0, 0.0]])
    detection = torch.tensor([[0.0, 1.0]])
    labels = torch.tensor([[0, 2]])  # real mixed with generator 2
    weights = torch.tensor([[0.3, 0.7]])
    attr, det = mixed_losses(gated, detection, labels, weights, num_classes=3)
    log_p = F.log_softmax(gated, 1)[0]
    assert math.isclose(float(attr), -(0.3 * log_p[0] + 0.7 * log_p[2]), rel_tol=1e-6)
    log_q = F.log_softmax(detection, 1)[0]
    # class weights [1, 1/(K-1)] = [1, 0.5]; per-sample weighted CE
    assert math.isclose(float(det), -(0.3 * 1.0 * log_q[0] + 0.7 * 0.5 * log_q[1]), rel_tol=1e-6)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corruptions_keep_shape_and_range(name):
    img = torch.rand(3, 32, 32)
    rng = np.random.default_rng(0)
    for severity in (1, 5):
        out = corrupt(img, name, severity, rng, scale=32 / 224)
        assert out.shape == img.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert not torch.allclose(corrupt(img, name, 5, rng, scale=32 / 224), img)


def test_training_step_and_state(batch):
    x, y = batch
    method = make_method(RepMix)
    losses = method.train_epoch([(x, y)], 0)
    assert set(losses) == {"loss_attr", "loss_det"} and all(math.isfinite(v) for v in losses.values())
    assert math.isclose(method.scheduler.get_last_lr()[0], 1e-3 * 0.85, rel_tol=1e-6)  # StepLR per epoch
    pred = method.predict(x)
    assert pred.logits.shape == (12, 3) and torch.allclose(pred.score, pred.logits.double().softmax(1).amax(1))
    other = make_method(RepMix)
    other.load_state_dict(roundtrip(method.state_dict()))
    assert torch.equal(other.predict(x).logits, pred.logits)


def test_pretrained_needs_standard_width():
    with pytest.raises(OsmaError, match="width 64"):
        make_method(RepMix, pretrained=True)


def test_smoke_run(synthetic_root, tmp_path):
    smoke_run(synthetic_root, tmp_path / "out", "repmix", epochs=2)


def test_mini_uses_the_small_stem_without_corruptions():
    from osma_bench.harness.config import resolve

    mini = resolve(RepMix, "mini")
    assert mini.values["small_stem"] is True and mini.values["corrupt_p"] == 0.0
    assert mini.values["epochs"] == 24 and "validation" in mini.departures["epochs"]
    paper = resolve(RepMix, "paper")
    assert paper.values["small_stem"] is False and paper.values["corrupt_p"] == 0.95


def test_small_stem_trains_and_mixes_at_the_input(batch):
    x, y = batch
    method = make_method(RepMix, small_stem=True, mix_level=0)
    assert method.net.backbone.conv1.stride == (1, 1)
    losses = method.train_epoch([(x, y)], 0)
    assert all(math.isfinite(v) for v in losses.values())
    assert method.predict(x).logits.shape == (12, 3)
