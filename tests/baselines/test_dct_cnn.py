"""DCT-CNN (Frank et al. 2020): log-DCT standardisation from training data only, the CNN, smoke run."""

from __future__ import annotations

import math

import torch

from baselines.dct_cnn import DCTCNN, log_dct
from osma_bench.nn import dct_2d
from tests.baselines.conftest import make_method, roundtrip, smoke_run


def test_log_dct_is_log_abs_orthonormal_dct_of_255_pixels():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    expected = torch.log(dct_2d((x.double() + 1) * 127.5, norm="ortho").abs() + 1e-12)
    assert torch.allclose(log_dct(x), expected)
    flat = torch.full((1, 3, 8, 8), 1.0)  # a white image: DC = 255 * 8 (orthonormal), the rest ~0
    assert math.isclose(float(log_dct(flat)[0, 0, 0, 0]), math.log(255 * 8), rel_tol=1e-9)


def test_standardisation_uses_training_statistics_only(batch):
    x, y = batch
    method = make_method(DCTCNN)
    stats = method.train_epoch([(x[:6], y[:6]), (x[6:], y[6:])], 0)  # the statistics pass
    assert stats == {"stats_images": 12.0}
    feats = log_dct(x)
    assert torch.allclose(method.standardiser.mean.double(), feats.mean(0), atol=1e-4)
    assert torch.allclose(method.standardiser.std.double(), feats.std(0, unbiased=False), atol=1e-4, rtol=1e-4)
    z = method.inputs(x)
    assert torch.allclose(z.mean(0), torch.zeros_like(z[0]), atol=1e-3)
    # later data (validation, test, more training epochs) never changes the statistics
    before = method.standardiser.mean.clone()
    method.train_epoch([(x * 0.1, y)], 1)
    method.predict(torch.rand(4, 3, 32, 32))
    assert torch.equal(method.standardiser.mean, before)
    # and they travel with the state
    other = make_method(DCTCNN)
    other.load_state_dict(roundtrip(method.state_dict()))
    assert torch.equal(other.standardiser.mean, before) and bool(other.standardiser.frozen)
    assert torch.equal(other.predict(x).logits, method.predict(x).logits)


def test_network_layout():
    method = make_method(DCTCNN)
    convs = [m for m in method.model.body if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [3, 8, 16, 32]
    assert method.model.head.in_features == 32 * 8 * 8


def test_learns_the_toy_batch(batch):
    x, y = batch
    method = make_method(DCTCNN)
    method.train_epoch([(x, y)], 0)
    for epoch in range(1, 15):
        method.train_epoch([(x, y)], epoch)
    assert (method.predict(x).logits.argmax(1) == y).float().mean() >= 0.9


def test_smoke_run(synthetic_root, tmp_path):
    smoke_run(synthetic_root, tmp_path / "out", "dct_cnn", epochs=3)
