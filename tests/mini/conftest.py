"""A tiny-scale mini benchmark built once for the tests of this folder."""

from __future__ import annotations

import pytest

from osma_bench.data.mini.build import build_mini


@pytest.fixture(scope="session")
def tiny_mini(tmp_path_factory):
    """``osma-bench build-data mini --scale tiny`` (seed 0, 32x32, in-process)."""
    return build_mini(tmp_path_factory.mktemp("mini") / "mini", seed=0, scale="tiny", workers=1)
