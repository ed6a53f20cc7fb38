"""Reader throughput: random-access images/s from the HDF5 store vs PIL decode + crop + resize.

Run: ``.venv/bin/python benchmarks/bench_reader.py [--images 400] [--reads 2000]``. One process,
the same images, the same random order: ``OSMADataset[i]`` against opening each source PNG with
PIL and preprocessing it the POSE loader's way (convert RGB, centre crop, resize to 128).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/osma-bench-reader"))
    args = parser.parse_args()
    from _images import flat_plan, make_png_folder
    from PIL import Image

    from osma_bench.data import OSMADataset
    from osma_bench.data.build import run_build
    from osma_bench.data.preprocess import PreprocessConfig, preprocess_pil

    src = args.work / "png"
    names = make_png_folder(src, args.images)
    out = args.work / "store"
    if not (out / "dataset.json").is_file():
        run_build(flat_plan(src, names), out, PreprocessConfig(size=128), overwrite=True)
    ds = OSMADataset(out, 1, "train")
    order = np.random.default_rng(0).integers(0, len(ds), size=args.reads)
    paths = [src / names[int(ds.indices[i])] for i in order]

    ds[0]  # open the handle
    start = time.perf_counter()
    for i in order:
        ds[int(i)]
    store_rate = args.reads / (time.perf_counter() - start)

    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as img:
            preprocess_pil(img, 128)
    pil_rate = args.reads / (time.perf_counter() - start)
    print(f"{args.reads} random reads of {len(ds)} images (128x128 from 256x192 PNG)")
    print(f"HDF5 store (OSMADataset[i]): {store_rate:.0f} images/s")
    print(f"PIL decode + crop + resize:  {pil_rate:.0f} images/s")
    print(f"ratio: {store_rate / pil_rate:.1f}x")


if __name__ == "__main__":
    main()
