"""Yu et al. (ICCV 2019): equalised-LR layers, the classifier, EMA, batching, smoke run."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from baselines.yu import YuClassifier, YuGANFingerprint
from osma_bench.methods.batching import rebatch
from osma_bench.nn.equalized import EqualizedConv2d, EqualizedLinear
from tests.baselines.conftest import make_method, roundtrip, smoke_run


def test_equalized_conv_scale_is_he_at_runtime():
    torch.manual_seed(0)
    conv = EqualizedConv2d(16, 32, 3)
    assert math.isclose(conv.scale, math.sqrt(2.0 / (16 * 9)))
    assert abs(float(conv.weight.detach().std()) - 1.0) < 0.05  # stored weights are N(0, 1)
    assert torch.count_nonzero(conv.bias) == 0
    x = torch.randn(2, 16, 8, 8)
    expected = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), conv.weight * math.sqrt(2.0 / 144), conv.bias)
    assert torch.allclose(conv(x), expected, atol=1e-6)


def test_equalized_linear_scale_and_gain():
    lin = EqualizedLinear(100, 10, gain=1.0)
    assert math.isclose(lin.scale, 1.0 / 10.0)
    x = torch.randn(4, 100)
    assert torch.allclose(lin(x), x @ (lin.weight * 0.1).T + lin.bias, atol=1e-6)
    # the gradient of the stored weight is scaled too (the "equalised learning rate")
    lin(x).sum().backward()
    assert torch.allclose(lin.weight.grad, 0.1 * torch.ones(4, 10).T @ x, atol=1e-5)


def test_classifier_layout():
    net = YuClassifier(5, 32, fmap_base=64, fmap_max=16)
    convs = [m for m in net.features_net if isinstance(m, EqualizedConv2d)]
    assert len(convs) == 2 * 3 + 1  # two per resolution 32, 16, 8, then one at 4x4
    assert convs[0].weight.shape[1] == 3  # no fromRGB: the first conv reads the image
    logits, feature = net(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 5) and feature.shape == (2, net.feature_dim)


def test_rebatch_cuts_stream_into_fixed_batches():
    stream = [(torch.arange(a, b), torch.arange(a, b)) for a, b in [(0, 5), (5, 12), (12, 13)]]
    sizes = [len(y) for _, y in rebatch(stream, 4)]
    assert sizes == [4, 4, 4, 1]
    assert torch.equal(torch.cat([y for _, y in rebatch(stream, 4)]), torch.arange(13))


def test_ema_tracks_weights_and_is_used_for_predictions_with_eval_ema(batch):
    x, y = batch
    method = make_method(YuGANFingerprint, ema_decay=0.5, eval_ema=True)
    before = [p.clone() for p in method.ema.parameters()]
    method.train_epoch([(x, y)], 0)
    for e, b, p in zip(method.ema.parameters(), before, method.model.parameters(), strict=True):
        assert torch.allclose(e, 0.5 * b + 0.5 * p.detach(), atol=1e-6)  # one step
    logits = method.predict(x).logits
    assert torch.allclose(logits, method.ema.eval()(x)[0], atol=1e-6)
    other = make_method(YuGANFingerprint, ema_decay=0.5, eval_ema=True)
    other.load_state_dict(roundtrip(method.state_dict()))
    assert torch.equal(other.predict(x).logits, logits)


def test_official_evaluation_uses_the_trained_weights(batch):
    """The official classifier has no EMA: by default predictions come from the trained weights."""
    x, y = batch
    method = make_method(YuGANFingerprint, ema_decay=0.5)
    assert method.hp["eval_ema"] is False
    method.train_epoch([(x, y)], 0)
    logits = method.predict(x).logits
    assert torch.allclose(logits, method.model.eval()(x)[0], atol=1e-6)
    assert not torch.allclose(logits, method.ema.eval()(x)[0], atol=1e-4)


def test_paper_and_mini_settings():
    from osma_bench.harness.config import resolve

    assert YuGANFingerprint.declared_hparams()["fmap_base"].default == 1024  # the official C_patch
    mini = resolve(YuGANFingerprint, "mini")
    assert mini.values["lr"] == 3e-3 and mini.values["epochs"] == 60
    assert mini.sources["epochs"].startswith("budget departure") and "validation" in mini.departures["lr"]
    paper = resolve(YuGANFingerprint, "paper")
    assert paper.values["fmap_base"] == 1024 and paper.values["eval_ema"] is False


def test_training_lowers_the_loss(batch):
    x, y = batch
    method = make_method(YuGANFingerprint, ema_decay=0.0, hflip=False, lr=1e-2)
    before = float(F.cross_entropy(method.predict(x).logits, y))
    for epoch in range(20):
        method.train_epoch([(x, y)], epoch)
    assert float(F.cross_entropy(method.predict(x).logits, y)) < 0.8 * before


def test_smoke_run(synthetic_root, tmp_path):
    smoke_run(synthetic_root, tmp_path / "out", "yu", epochs=2)
