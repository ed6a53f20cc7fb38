"""Per-epoch training cost of the attribution baselines (POSE's Table 1) relative to Base, side by side.

Every method sees the same synthetic images (``osma_bench.data.synthetic.synthetic_images``: K
classes of patterned noisy 32x32 images, the ``mini`` profile's shape by default, 16 images per class
per step). Batches are class-balanced; the methods that train on plain shuffled batches re-cut the
same stream into their paper batch size, so every method processes the same images per epoch. The
methods are timed in turns (round robin, so machine load affects all alike) and the median over
rounds is reported. Two-stage methods are timed in both stages: DCT-CNN's statistics pass and a
training epoch, DNA-Det's transformation pre-training and a training epoch; PRNU's one accumulating
pass is its whole training, its validation grid search (``finalize``) is reported separately.
Run by hand:

    .venv/bin/python benchmarks/bench_attr_cost.py [--steps 4] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import statistics
import time

import torch
from _cost import cost_arguments, make_method, synthetic_batches

from baselines.dct_cnn import DCTCNN
from baselines.dnadet import DNADet
from baselines.prnu import PRNU
from baselines.repmix import RepMix
from baselines.yu import YuGANFingerprint
from osma_bench.harness.config import resolve_config
from osma_bench.methods.base_cnn import BaseMethod


def main() -> None:
    args = cost_arguments(__doc__.splitlines()[0])
    config = resolve_config(BaseMethod, args.profile)
    batches = synthetic_batches(args.classes, int(config["per_class"]), int(config["image_size"]), args.steps)

    dct = make_method(DCTCNN, args.profile, args.classes)
    dct.train_epoch(batches, 0)  # freeze the statistics so later calls time training epochs
    dnadet = make_method(DNADet, args.profile, args.classes)
    runs = {
        "base": (make_method(BaseMethod, args.profile, args.classes), 0),
        "prnu (accumulating pass)": (make_method(PRNU, args.profile, args.classes), 0),
        "yu": (make_method(YuGANFingerprint, args.profile, args.classes), 0),
        "dct_cnn (training epoch)": (dct, 1),
        "dnadet (pre-training)": (dnadet, 0),
        "dnadet (training)": (dnadet, int(dnadet.hp["pretrain_epochs"])),
        "repmix": (make_method(RepMix, args.profile, args.classes), 0),
    }
    for name, (method, epoch) in runs.items():  # warm-up: first calls allocate and pick kernels
        if not name.startswith("prnu"):
            method.train_epoch(batches[:1], epoch)
    times: dict[str, list[float]] = {name: [] for name in runs}
    stats_pass: list[float] = []
    for _ in range(args.rounds):
        for name, (method, epoch) in runs.items():
            start = time.perf_counter()
            method.train_epoch(batches, epoch)
            times[name].append(time.perf_counter() - start)
        fresh = make_method(DCTCNN, args.profile, args.classes)
        start = time.perf_counter()
        fresh.train_epoch(batches, 0)
        stats_pass.append(time.perf_counter() - start)
    times["dct_cnn (statistics pass)"] = stats_pass
    prnu = runs["prnu (accumulating pass)"][0]
    start = time.perf_counter()
    prnu.finalize(batches, batches)
    finalize_s = time.perf_counter() - start

    base = statistics.median(times["base"])
    images = sum(len(y) for _, y in batches)
    print(f"profile {args.profile}: {args.classes} classes, {images} images per epoch ({args.steps} steps), "
          f"median of {args.rounds} rounds, {torch.get_num_threads()} thread(s)")
    print(f"{'method':28s} {'s/epoch':>9s} {'x Base':>7s}")
    for name, values in times.items():
        seconds = statistics.median(values)
        print(f"{name:28s} {seconds:9.3f} {seconds / base:7.2f}")
    print(f"prnu finalize (grid of {len(prnu.grid)} on {images} validation images): {finalize_s:.2f}s "
          f"({finalize_s / base:.2f}x a Base epoch)")


if __name__ == "__main__":
    main()
