"""Same --seed -> same content hash; another seed -> other content; workers do not change content."""

from __future__ import annotations

import numpy as np

from osma_bench.data import load_card
from osma_bench.data.mini.build import build_mini, make_benchmark


def test_same_seed_same_content_hash(tiny_mini, tmp_path):
    again = build_mini(tmp_path / "again", seed=0, scale="tiny", workers=1)
    assert load_card(again)["content_sha256"] == load_card(tiny_mini)["content_sha256"]


def test_other_seed_other_images_and_worker_count_is_irrelevant():
    one = make_benchmark(seed=0, scale="tiny", workers=1)
    other = make_benchmark(seed=1, scale="tiny", workers=1)
    assert one.images.shape == other.images.shape
    assert not np.array_equal(one.images, other.images)
    gen_rows = one.class_id > 0
    assert one.images.dtype == np.uint8 and one.images.shape[1:] == (32, 32, 3)
    assert len(np.unique(one.images[gen_rows].reshape(gen_rows.sum(), -1), axis=0)) == gen_rows.sum()
