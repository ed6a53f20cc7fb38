"""Features of a method's augmented samples for the t-SNE plot (osma_bench.harness.augmented)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from osma_bench.harness.augmented import augmented_features
from osma_bench.harness.data import Partition
from osma_bench.methods.api import Prediction


class Stub:
    """Just what ``augmented_features`` uses of a method: features are each image's channel means."""

    device = torch.device("cpu")

    def __init__(self, samples="two", features=True):
        self.samples, self.features, self.seen = samples, features, []

    def augmented_samples(self, images):
        self.seen.append(images.clone())
        if self.samples is None:
            return None
        if self.samples == "noise":
            return {"noise": torch.randn_like(images)}
        return {"flip": images.flip(-1), "dark": images * 0.5}

    def predict(self, images):
        feats = images.mean(dim=(2, 3)) if self.features else None
        return Prediction(torch.zeros(len(images), 3), torch.zeros(len(images)), feats)


@pytest.fixture(scope="module")
def known_test(synthetic):
    return Partition(synthetic, 1, "test", torch.device("cpu"), 4096, 0)


def config(n=5, batch=2):
    return {"augmented_plot_images": n, "eval_batch_size": batch}


def test_first_images_of_the_known_test_set_in_batch_then_source_order(known_test):
    method = Stub()
    out = augmented_features(method, known_test, config(5, 2))
    seen = torch.cat(method.seen)
    first = next(iter(known_test.batches([list(range(5))])))[0]
    assert torch.equal(seen, first)  # exactly the first 5 known test images, in order
    assert out["augmented_features"].dtype == np.float32 and out["augmented_features"].shape == (10, 3)
    assert out["augmented_source"].dtype.kind == "S"
    assert list(out["augmented_source"]) == [b"flip"] * 2 + [b"dark"] * 2 + [b"flip"] * 2 + [b"dark"] * 2 + \
        [b"flip", b"dark"]
    np.testing.assert_allclose(out["augmented_features"][2:4], 0.5 * first[:2].mean(dim=(2, 3)).numpy(), rtol=1e-6)


def test_deterministic_and_leaves_the_global_generator_alone(known_test):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = augmented_features(Stub("noise"), known_test, config())
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(456)
    b = augmented_features(Stub("noise"), known_test, config())
    assert np.array_equal(a["augmented_features"], b["augmented_features"])


@pytest.mark.parametrize("method, n", [(Stub(samples=None), 5), (Stub(features=False), 5), (Stub(), 0)])
def test_nothing_when_the_method_makes_no_samples_or_features(known_test, method, n):
    assert augmented_features(method, known_test, config(n)) is None


def test_bounded_rows(known_test, monkeypatch):
    monkeypatch.setattr("osma_bench.harness.augmented.MAX_AUGMENTED_ROWS", 3)
    out = augmented_features(Stub(), known_test, config(5, 2))
    assert list(out["augmented_source"]) == [b"flip", b"flip", b"dark"]


def test_a_run_keeps_going_when_augmented_features_cannot_be_stored(synthetic, tmp_path, monkeypatch):
    import h5py

    from osma_bench.harness.runner import RunRequest, run

    def broken(method, known_test, config):  # a method whose samples gave non-finite features
        return {"augmented_features": np.full((4, 512), np.nan, np.float32),
                "augmented_source": np.array([b"aug_0"] * 4)}

    monkeypatch.setattr("osma_bench.harness.augmented.augmented_features", broken)
    result = run(RunRequest(method="base", data=synthetic, split=1, profile="smoke", device="cpu", out=tmp_path,
                            overrides={"num_threads": 1}, progress=False, verify=False))
    assert result.metrics["closed_set"]["n"] == 12
    with h5py.File(result.path / "scores.h5") as fh:
        assert "features" in fh and "augmented" not in fh
    assert "augmented samples' features not saved: " in (result.path / "log.txt").read_text()
