"""Per-epoch training cost of the open-set baselines relative to Base, measured side by side.

Every method trains on the same synthetic class-balanced batches (the ``mini`` profile's shape by
default: 32x32 images, K = 10 classes, 16 images per class per step, Simple_CNN width 32); the
methods are timed in turns (round robin) so that machine load affects all alike, and the median
over rounds is reported. PROSER is timed in both phases (a Base epoch and a fine-tuning epoch);
OpenMax trains exactly as Base and adds a one-off ``finalize`` (reported separately). Run by hand:

    .venv/bin/python benchmarks/bench_osr_cost.py [--steps 4] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import statistics
import time

import torch
from _cost import cost_arguments, make_method, synthetic_batches

from baselines.arpl_cs import ARPLCS
from baselines.dias import DIAS
from baselines.openmax import OpenMax
from baselines.proser import PROSER
from osma_bench.harness.config import resolve_config
from osma_bench.methods.base_cnn import BaseMethod


def main() -> None:
    args = cost_arguments(__doc__.splitlines()[0])
    config = resolve_config(BaseMethod, args.profile)
    batches = synthetic_batches(args.classes, int(config["per_class"]), int(config["image_size"]), args.steps)

    proser = make_method(PROSER, args.profile, args.classes)
    runs = {
        "base": (make_method(BaseMethod, args.profile, args.classes), 0),
        "openmax (Base phase)": (make_method(OpenMax, args.profile, args.classes), 0),
        "proser (Base phase)": (proser, 0),
        "proser (fine-tuning)": (proser, proser.base_epochs),
        "arpl_cs": (make_method(ARPLCS, args.profile, args.classes), 0),
        "dias": (make_method(DIAS, args.profile, args.classes), 0),
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
    print(f"profile {args.profile}: {args.classes} classes, {len(batches[0][1])} images per step, {args.steps} steps per "
          f"epoch, median of {args.rounds} rounds, {torch.get_num_threads()} thread(s)")
    print(f"{'method':24s} {'s/epoch':>9s} {'x Base':>7s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:24s} {median:9.3f} {median / base:7.2f}")
    print(f"openmax finalize (fit + selection on {args.steps * len(batches[0][1])} train/val images): {finalize_s:.3f} s")


if __name__ == "__main__":
    main()
