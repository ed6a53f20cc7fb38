"""A tiny synthetic dataset for the tune tests (built once per session)."""

from __future__ import annotations

import pytest

from osma_bench.data import make_synthetic_dataset


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "syn"
    return make_synthetic_dataset(root, num_known=3, per_class=(8, 4, 4), image_size=32, splits=1)
