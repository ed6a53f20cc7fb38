"""Fixtures: a tiny synthetic dataset and a valid score file for one of its splits."""

from __future__ import annotations

import numpy as np
import pytest


def fake_scores_for_split(root, split: int, seed: int = 0, features: bool = False) -> dict:
    """Arguments for ``write_scores`` covering exactly the test images of ``split`` of ``root``."""
    from osma_bench.data import OSMADataset, load_card, read_split

    card = load_card(root)
    info = read_split(root, split)
    rng = np.random.default_rng(seed)
    cols = {k: [] for k in ("index", "sha256", "group", "label")}
    for code, part in enumerate(("test", "out_seed", "out_arch", "out_dataset")):
        idx, lab = info.partitions[part]
        cols["index"].append(idx)
        cols["sha256"].append(OSMADataset(root, split, part).sha256())
        cols["group"].append(np.full(idx.size, code))
        cols["label"].append(lab)
    out = {k: np.concatenate(v) for k, v in cols.items()}
    n, k = out["index"].size, len(info.known_classes)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    known = out["group"] == 0
    logits[known, out["label"][known]] += 2.0
    out.update(logits=logits, score=logits.max(axis=1).astype(np.float64) + known * 0.5,
               split=split, dataset_sha256=card["content_sha256"], method="toy", num_classes=k)
    if features:
        out["features"] = rng.normal(size=(n, 8)).astype(np.float32) + known[:, None]
    return out


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    from osma_bench.data import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("data") / "synth", num_known=3, per_class=(2, 2, 6),
                                  image_size=8, splits=2, per_unknown=5, unknown_per_group=2)
