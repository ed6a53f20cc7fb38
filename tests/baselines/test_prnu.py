"""PRNU (Marra et al. 2019): planted-fingerprint recovery, batched FFT NCC, validation choice, smoke run."""

from __future__ import annotations

import numpy as np
import torch

from baselines.prnu import PRNU, ncc, ncc_maps, noise_residuals, zero_mean_total
from tests.baselines.conftest import make_method, roundtrip, smoke_run

SIDE = 32


def planted(fingerprints: np.ndarray, k: int, n: int, rng: np.random.Generator) -> torch.Tensor:
    """Smooth random scenes carrying class k's multiplicative fingerprint, in [-1, 1]."""
    ramp = np.linspace(0, 6, SIDE)
    scene = rng.uniform(0.3, 0.7, (n, 3, 1, 1)) + 0.1 * np.sin(ramp)[None, None, :, None] * rng.normal(0, 1, (n, 3, 1, 1))
    x = scene * (1 + 0.04 * fingerprints[k][None, None]) + rng.normal(0, 0.01, (n, 3, SIDE, SIDE))
    return torch.from_numpy(np.clip(x, 0, 1) * 2 - 1).float()


def test_recovers_planted_fingerprints():
    rng = np.random.default_rng(0)
    fingerprints = rng.normal(0, 1, (3, SIDE, SIDE))
    method = make_method(PRNU)
    train_x = torch.cat([planted(fingerprints, k, 16, rng) for k in range(3)])
    train_y = torch.arange(3).repeat_interleave(16)
    method.train_epoch([(train_x[:20], train_y[:20]), (train_x[20:], train_y[20:])], 0)
    for k in range(3):  # each estimated fingerprint correlates with its planted pattern, not the others
        estimate = method.fingerprints(0)[k].flatten().numpy()
        corr = [np.corrcoef(estimate, fingerprints[j].flatten())[0, 1] for j in range(3)]
        assert int(np.argmax(corr)) == k and corr[k] > 0.5, corr
    val_x = torch.cat([planted(fingerprints, k, 6, rng) for k in range(3)])
    val_y = torch.arange(3).repeat_interleave(6)
    method.finalize([], [(val_x, val_y)])
    assert float(method.val_accuracy.max()) == 1.0
    pred = method.predict(val_x)
    assert (pred.logits.argmax(dim=1) == val_y).all()
    assert torch.allclose(pred.score, pred.logits.double().amax(dim=1), atol=1e-6)
    # an image with no fingerprint correlates less than the fingerprinted ones
    blank = planted(np.zeros((1, SIDE, SIDE)), 0, 6, rng)
    assert method.predict(blank).score.max() < pred.score.min()


def test_batched_ncc_equals_direct_computation():
    gen = torch.Generator().manual_seed(1)
    r, f = torch.randn(4, 8, 8, generator=gen, dtype=torch.float64), torch.randn(3, 8, 8, generator=gen, dtype=torch.float64)
    maps = ncc_maps(r, f)
    for b in range(4):
        for k in range(3):
            x, y = r[b] - r[b].mean(), f[k] - f[k].mean()
            expected = float((x * y).sum() / (x.norm() * y.norm()))
            assert abs(float(ncc(r, f)[b, k]) - expected) < 1e-10
            shifted = torch.roll(y, shifts=(2, 3), dims=(0, 1))  # correlation at shift (2, 3)
            assert abs(float(maps[b, k, 2, 3]) - float((x * shifted).sum() / (x.norm() * y.norm()))) < 1e-10
    assert torch.equal(ncc(r, f, shifts=True), maps.flatten(-2).amax(-1))


def test_residual_is_zero_mean_and_batched():
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 1, (3, 3, SIDE, SIDE))
    res = noise_residuals(images, levels=2, sigma=0.05)
    assert res.shape == (3, SIDE, SIDE)
    one = noise_residuals(images[1:2], levels=2, sigma=0.05)
    assert np.allclose(res[1], one[0])  # batching does not mix images
    zm = zero_mean_total(rng.normal(0, 1, (2, 8, 8)))
    assert np.allclose(zm[:, 0::2, 0::2].mean(axis=-1), 0) and np.allclose(zm[:, 1::2, 1::2].mean(axis=-2), 0)


def test_state_roundtrip(batch):
    x, y = batch
    method = make_method(PRNU)
    method.train_epoch([(x, y)], 0)
    method.finalize([], [(x, y)])
    other = make_method(PRNU)
    other.load_state_dict(roundtrip(method.state_dict()))
    assert other.chosen == method.chosen
    assert torch.equal(other.predict(x).logits, method.predict(x).logits)


def test_smoke_run(synthetic_root, tmp_path):
    result = smoke_run(synthetic_root, tmp_path / "out", "prnu", epochs=1)
    assert result.metrics["closed_set"]["accuracy"] > 0.5


def test_sigma_is_in_grey_levels():
    """The denoiser's sigma is in grey levels (0..255), as the reference denoiser on uint8 images: the
    residual of an image with sigma = 5 grey levels equals the [0, 1]-scale residual with sigma 5/255,
    scaled by 255 (issue 15: the grid used to be applied on the [0, 1] scale)."""
    rng = np.random.default_rng(5)
    unit = rng.uniform(0.2, 0.8, (3, 3, SIDE, SIDE))  # pixels on the [0, 1] scale
    reference = 255.0 * noise_residuals(unit, 2, 5.0 / 255.0)
    grey = noise_residuals(unit * 255.0, 2, 5.0)
    np.testing.assert_allclose(grey, reference, rtol=1e-9, atol=1e-9)
    # the method feeds the denoiser grey levels: its residual of [-1, 1] images is the grey-level one
    method_residual = PRNU.residuals(torch.from_numpy(unit * 2 - 1), 2, 5.0).numpy()
    np.testing.assert_allclose(method_residual, grey, rtol=1e-9, atol=1e-9)
    # ... and not the one of sigma = 5 on the [0, 1] scale (the old unit: everything counted as noise)
    wrong = noise_residuals(unit, 2, 5.0)
    corr = np.corrcoef(wrong.ravel(), method_residual.ravel())[0, 1]
    assert corr < 0.99, corr


def test_declared_sigma_grid_is_in_grey_levels():
    declared = PRNU.declared_hparams()["sigma_grid"]
    assert "grey levels" in declared.help and declared.high == 255.0
    assert declared.default[0] == 0.05 and declared.default[-1] == 0.95  # GANDCTAnalysis's grid, uint8 scale
    mini = PRNU.resolve_hparams("mini")["sigma_grid"]
    assert all(0 < s <= 255 for s in mini)


def test_smoke_run_records_the_chosen_setting(synthetic_root, tmp_path):
    import json

    result = smoke_run(synthetic_root, tmp_path, "prnu", epochs=1)
    chosen = json.loads((result.path / "run.json").read_text())["method_record"]
    by_setting = chosen["val_accuracy_by_setting"]
    assert len(by_setting) == 4 and chosen["val_accuracy"] == max(by_setting.values())
    assert f"levels={chosen['levels']},sigma={chosen['sigma']:g}" in by_setting
