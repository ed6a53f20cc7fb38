"""A tiny synthetic dataset and finished smoke runs shared by the robustness tests (built once)."""

from __future__ import annotations

import pytest

from osma_bench.data import make_synthetic_dataset
from osma_bench.harness.runner import RunRequest, run


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "syn"
    return make_synthetic_dataset(root, num_known=3, per_class=(8, 4, 4), image_size=32, splits=2)


def smoke_run(data, out, method: str = "base", split: int = 1):
    """One finished smoke run (1 CPU thread); returns its folder."""
    request = RunRequest(method=method, data=data, split=split, seed=0, profile="smoke", device="cpu", out=out,
                         overrides={"num_threads": 1}, progress=False)
    return run(request).path


@pytest.fixture(scope="session")
def base_run(synthetic, tmp_path_factory):
    """A finished Base run (with its checkpoints); tests copy it before changing anything."""
    return smoke_run(synthetic, tmp_path_factory.mktemp("runs"))
