"""Shared fixtures of the baseline tests: a method on tiny tensors and a smoke run of the harness."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from osma_bench.methods.api import MethodSpec

K = 3


def make_method(cls, epochs: int | None = None, **overrides):
    """``cls`` with the smoke profile's hyperparameters, K = 3 classes, 32x32 images, on the CPU."""
    hp = cls.resolve_hparams("smoke", {"lr": 1e-3, "lr_step": 50, "lr_gamma": 0.9, "width": 8, **overrides})
    spec = MethodSpec(K, 32, torch.device("cpu"), hp, seed=0, epochs=int(epochs or hp.get("epochs", 2)),
                      steps_per_epoch=2, profile="smoke")
    return cls(spec)


def roundtrip(state):
    """A state dict through torch.save / torch.load(weights_only=True)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(12, 3, 32, 32, generator=gen) * 2 - 1
    y = torch.arange(K).repeat_interleave(4)
    return x * 0.2 + y.view(-1, 1, 1, 1).float() * 0.5 - 0.5, y


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    from osma_bench.data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("osr") / "synthetic", splits=1)


def smoke_run(root: Path, out: Path, method: str, epochs: int, overrides: dict | None = None):
    """One full harness run (train, select, finalize, evaluate, write) under the smoke profile."""
    from osma_bench.harness.runner import RunRequest, run

    result = run(RunRequest(method=method, data=root, split=1, profile="smoke", epochs=epochs, out=out,
                            overrides=dict(overrides or {}), progress=False))
    for name in ("run.json", "metrics.json", "scores.h5"):
        assert (result.path / name).is_file(), name
    import json

    record = json.loads((result.path / "run.json").read_text())
    assert record["status"] == "complete" and record["method"] == method
    every = result.metrics["open_set"]["all"]
    assert 0.0 <= every["auroc"] <= 1.0 and 0.0 <= result.metrics["closed_set"]["accuracy"] <= 1.0
    return result
