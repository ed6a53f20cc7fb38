"""Fixtures for the hostile-input cases: a tiny synthetic dataset and fresh copies to damage."""

from __future__ import annotations

import re
import shutil

import pytest

from osma_bench.data import make_synthetic_dataset


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "syn"
    return make_synthetic_dataset(root, num_known=3, per_class=(8, 4, 4), image_size=32, splits=1)


@pytest.fixture
def dataset_copy(synthetic, tmp_path):
    """A fresh copy of the synthetic dataset that a test may damage."""
    target = tmp_path / "copy"
    shutil.copytree(synthetic, target)
    return target


#: A progress line of a phase that finished before the refusal (osma_bench/phases.py, off a terminal).
PHASE_LINE = re.compile(r"^[^:]+: (done in \d+\.\d s|\d+/\d+ .*)$|^[^:]+ \.\.\.$")


def one_error_line(err: str) -> str:
    """The single ``error: ...`` line of a refusal (asserting there is exactly one line besides the
    progress lines of phases that finished before it, and no traceback)."""
    lines = [line for line in err.splitlines() if line.strip() and not PHASE_LINE.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]
