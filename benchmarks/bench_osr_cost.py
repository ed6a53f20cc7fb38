"""Per-epoch training cost of the open-set baselines relative to Base, measured side by side.

Every method trains on the same synthetic class-balanced batches (the ``mini`` profile's shape by
default: 32x32 images, K = 10 classes, 16 images per class per step, Simple_CNN width 32); the
methods are timed in turns (round robin) so that machine load affects all alike, and the median
over rounds is reported. PROSER is timed in both phases (a Base epoch and a fine-tuning epoch);
OpenMax trains exactly as Base and adds a one-off ``finalize`` (reported separately). Run by hand:

    .venv/bin/python benchmarks/bench_osr_cost.py [--steps 4] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from baselines.arpl_cs import ARPLCS
from baselines.dias import DIAS
from baselines.openmax import OpenMax
from baselines.proser import PROSER
from osma_bench.harness.config import resolve_config
from osma_bench.methods.api import MethodSpec
from osma_bench.methods.base_cnn import BaseMethod


def make(cls, profile: str, num_classes: int, epochs: int | None = None):
    config = resolve_config(cls, profile)
    if epochs is not None:
        config["epochs"] = epochs
    spec = MethodSpec(num_classes, int(config["image_size"]), torch.device("cpu"), config, seed=0,
                      epochs=int(config["epochs"]), steps_per_epoch=1, profile=profile)
    return cls(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=4, help="training steps per timed epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = resolve_config(BaseMethod, args.profile)
    size, per_class = int(config["image_size"]), int(config["per_class"])
    labels = torch.arange(args.classes).repeat_interleave(per_class)
    batches = [(torch.rand(len(labels), 3, size, size) * 2 - 1, labels) for _ in range(args.steps)]

    proser = make(PROSER, args.profile, args.classes)
    runs = {
        "base": (make(BaseMethod, args.profile, args.classes), 0),
        "openmax (Base phase)": (make(OpenMax, args.profile, args.classes), 0),
        "proser (Base phase)": (proser, 0),
        "proser (fine-tuning)": (proser, proser.base_epochs),
        "arpl_cs": (make(ARPLCS, args.profile, args.classes), 0),
        "dias": (make(DIAS, args.profile, args.classes), 0),
    }
    for method, epoch in runs.values():  # warm-up: first calls allocate and pick kernels
        method.train_epoch(batches[:1], epoch)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (method, epoch) in runs.items():
            start = time.perf_counter()
            method.train_epoch(batches, epoch)
            times[name].append(time.perf_counter() - start)
    openmax = runs["openmax (Base phase)"][0]
    start = time.perf_counter()
    openmax.finalize(batches, batches)
    finalize_s = time.perf_counter() - start

    base = statistics.median(times["base"])
    print(f"profile {args.profile}: {args.classes} classes, {len(labels)} images per step, {args.steps} steps per "
          f"epoch, median of {args.rounds} rounds, {torch.get_num_threads()} thread(s)")
    print(f"{'method':24s} {'s/epoch':>9s} {'x Base':>7s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:24s} {median:9.3f} {median / base:7.2f}")
    print(f"openmax finalize (fit + selection on {args.steps * len(labels)} train/val images): {finalize_s:.3f} s")


if __name__ == "__main__":
    main()
