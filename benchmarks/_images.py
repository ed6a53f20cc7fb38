"""Shared by the benchmark scripts: a folder of generated PNG files and a flat build plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from osma_bench.data.build import BuildPlan, Item


def make_png_folder(folder: Path, count: int, size: tuple[int, int] = (256, 192), seed: int = 0) -> list[str]:
    """``count`` PNG files (smooth gradients plus noise, so they compress like photos), reused if present."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    names = []
    for i in range(count):
        name = f"{i:06d}.png"
        names.append(name)
        path = folder / name
        if path.exists():
            continue
        base = (xx * (1 + i % 3) + yy * (1 + i % 5)) % 256
        noise = rng.integers(0, 24, size=(h, w, 3))
        pixels = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path)
    return names


def flat_plan(root: Path, names: list[str]) -> BuildPlan:
    """Two classes alternating; split 1 puts every image in train."""
    items = [Item(n, i % 2) for i, n in enumerate(names)]
    classes = [{"name": "real", "real": True}, {"name": "fake"}]
    train = [(n, i % 2) for i, n in enumerate(names)]
    splits = {1: {"known": ["real", "fake"], "unknown": {"seed": [], "arch": [], "dataset": []},
                  "partitions": {"train": train}}}
    return BuildPlan("bench", root, classes, items, splits)
