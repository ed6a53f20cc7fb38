"""Same --seed -> same content hash (whatever the worker count); another seed -> other content."""

from __future__ import annotations

import h5py
import numpy as np

from osma_bench.data import load_card
from osma_bench.data.mini.build import build_mini, make_benchmark


def test_same_seed_same_content_hash_with_two_worker_processes(tiny_mini, tmp_path):
    again = build_mini(tmp_path / "again", seed=0, scale="tiny", workers=2)
    assert load_card(again)["content_sha256"] == load_card(tiny_mini)["content_sha256"]


def test_other_seed_gives_other_images(tiny_mini):
    with h5py.File(tiny_mini / "images-00000.h5", "r") as fh:
        seed0 = fh["images"][:]
        class_id = fh["class_id"][:]
    other = make_benchmark(seed=1, scale="tiny", workers=1)
    assert other.images.shape == seed0.shape and other.images.dtype == np.uint8
    assert np.array_equal(other.class_id, class_id)
    assert not np.array_equal(other.images, seed0)
    fake = other.class_id > 0
    assert len(np.unique(other.images[fake].reshape(fake.sum(), -1), axis=0)) == fake.sum()
