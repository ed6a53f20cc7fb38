"""A tiny, structurally complete dataset for tests (harness, evaluation, ...), built in well under 1 s.

``make_synthetic_dataset`` writes a real dataset through :class:`DatasetWriter`: known classes
(index 0 ``real``), and unknown groups seed / arch / dataset with at least one class each, over
``splits`` protocol splits. Every class has its own pattern (a coloured grating with a
class-specific frequency and orientation, plus noise), so a small classifier learns something
within a few steps, while the unknown classes look different from all known ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from osma_bench.data.store import DatasetWriter


def synthetic_images(class_index: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uint8 (size, size, 3) images with the pattern of ``class_index``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = 0.7 * class_index
    freq = 2.0 + 1.5 * (class_index % 5)
    wave = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
    colour = np.array(
        [np.sin(class_index * 1.3), np.cos(class_index * 0.9), np.sin(class_index * 2.1 + 1.0)], np.float32
    )
    base = 127.5 + 60.0 * wave[..., None] * colour[None, None, :]
    phase = rng.uniform(-1, 1, size=(n, 1, 1, 1)).astype(np.float32) * 20.0
    noise = rng.normal(0.0, 18.0, size=(n, size, size, 3)).astype(np.float32)
    return np.clip(base[None] + phase + noise, 0, 255).astype(np.uint8)


def make_synthetic_dataset(
    out_dir: str | os.PathLike,
    num_known: int = 3,
    per_class: tuple[int, int, int] | int = (8, 4, 4),
    image_size: int = 32,
    splits: int = 2,
    seed: int = 0,
    per_unknown: int = 4,
    unknown_per_group: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write a small dataset to ``out_dir`` and return its path.

    Args:
        out_dir: the dataset folder to create.
        num_known: known classes per split (index 0 is ``real``); at least 2.
        per_class: images per known class in (train, val, test), or one number for all three.
        image_size: stored image side.
        splits: number of protocol splits (``split1`` ... ``split<splits>``); each split draws its
            own partition of the known classes' images.
        seed: seeds the pixels and the partitions: same seed, same content hash.
        per_unknown: images per unknown class.
        unknown_per_group: classes in each unknown group (seed, arch, dataset).
        overwrite: replace an existing dataset at ``out_dir``.
    """
    if num_known < 2:
        raise ValueError("num_known must be at least 2 (real + one fake)")
    if isinstance(per_class, int):
        per_class = (per_class, per_class, per_class)
    n_train, n_val, n_test = per_class
    rng = np.random.default_rng(seed)
    known = ["real"] + [f"gan{i}" for i in range(1, num_known)]
    unknown = {
        "seed": [f"gan1_seed{j + 1}" for j in range(unknown_per_group)],
        "arch": [f"arch{j}" for j in range(unknown_per_group)],
        "dataset": [f"gan1_data{j}" for j in range(unknown_per_group)],
    }
    classes = [{"name": "real", "real": True, "architecture": None, "seed": None,
                "training_data": "synthetic", "source": "synthetic"}]
    classes += [{"name": c, "real": False, "architecture": f"arch-{c}", "seed": 0,
                 "training_data": "synthetic", "source": "synthetic"} for c in known[1:]]
    classes += [{"name": c, "real": False, "architecture": "arch-gan1" if g != "arch" else f"arch-{c}",
                 "seed": j + 1 if g == "seed" else 0, "training_data": "synthetic-2" if g == "dataset" else "synthetic",
                 "source": "synthetic"} for g in ("seed", "arch", "dataset") for j, c in enumerate(unknown[g])]
    writer = DatasetWriter(
        out_dir, name=Path(out_dir).name, image_size=image_size, classes=classes, shard_size=256,
        build_info={"command": "make_synthetic_dataset", "seed": seed, "sources": ["synthetic"]},
        preprocessing={"convert": "RGB", "crop": None, "resize_filter": None, "normalize": None},
        overwrite=overwrite,
    )
    per_known = n_train + n_val + n_test
    known_idx = {}
    for cid, name in enumerate(known):
        known_idx[name] = writer.add_images(synthetic_images(cid, per_known, image_size, rng), cid)
    unknown_idx = {}
    offset = len(known)
    for g in ("seed", "arch", "dataset"):
        for name in unknown[g]:
            unknown_idx[name] = writer.add_images(synthetic_images(offset, per_unknown, image_size, rng), offset)
            offset += 1
    for k in range(1, splits + 1):
        split_rng = np.random.default_rng([seed, k])
        parts: dict[str, tuple[list, list]] = {p: ([], []) for p in ("train", "val", "test")}
        for label, name in enumerate(known):
            order = split_rng.permutation(known_idx[name])
            for part, (lo, hi) in zip(("train", "val", "test"),
                                      ((0, n_train), (n_train, n_train + n_val), (n_train + n_val, per_known)),
                                      strict=True):
                parts[part][0].extend(order[lo:hi])
                parts[part][1].extend([label] * (hi - lo))
        partitions = {p: (np.asarray(i, np.int64), np.asarray(lab, np.int64)) for p, (i, lab) in parts.items()}
        for g in ("seed", "arch", "dataset"):
            idx = np.concatenate([unknown_idx[c] for c in unknown[g]])
            lab = np.concatenate([np.full(per_unknown, j) for j in range(len(unknown[g]))])
            partitions[f"out_{g}"] = (idx, lab)
        writer.add_split(k, known, unknown, partitions)
    return writer.finalize({"generator": "osma_bench.data.synthetic"})
