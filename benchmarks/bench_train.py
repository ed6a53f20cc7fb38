"""Training throughput of Base and POSE (images/s, augmentation steps included) and POSE/Base cost.

Measures full training steps on random class-balanced batches (no data loading), after warm-up,
with POSE in its steady state (epoch >= 1: an earlier augmentation model exists, so every step
runs both triplet terms). Settings follow the profiles: ``mini`` (32x32, width 32, 10 classes x
16 images) and ``paper`` (128x128, width 64, 15 classes x 8 images; ``--paper-per-class`` lowers
the batch on a CPU). Run by hand, never as a timed test::

    .venv/bin/python benchmarks/bench_train.py --steps 5 --threads 2
    .venv/bin/python benchmarks/bench_train.py --device cuda --sizes paper --steps 200 --amp

Prints a table and writes JSON with ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from osma_bench.harness.config import load_profile
from osma_bench.methods.api import MethodSpec
from osma_bench.methods.base_cnn import BaseMethod
from osma_bench.methods.pose import POSEMethod

CLASSES = {"mini": 10, "paper": 15}


def batches(num_classes: int, per_class: int, size: int, steps: int, device: torch.device):
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    for _ in range(steps):
        images = torch.rand(len(labels), 3, size, size, generator=gen) * 2 - 1
        yield images.to(device), labels.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(cls, profile: str, per_class: int, steps: int, warmup: int, device: torch.device, amp: bool) -> dict:
    config = load_profile(profile)
    size, classes = int(config["image_size"]), CLASSES[profile]
    hp = cls.resolve_hparams(profile, {**config, "amp": amp})
    torch.manual_seed(0)
    method = cls(MethodSpec(classes, size, device, hp, seed=0, epochs=2, steps_per_epoch=steps, profile=profile))
    method.train_epoch(batches(classes, per_class, size, warmup, device), 0)  # warm-up; POSE keeps an aug model
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    start = time.perf_counter()
    method.train_epoch(batches(classes, per_class, size, steps, device), 1)
    sync(device)
    seconds = time.perf_counter() - start
    images = steps * classes * per_class
    row = {"method": cls.name, "profile": profile, "image_size": size, "batch": classes * per_class,
           "steps": steps, "seconds": seconds, "images_per_s": images / seconds, "s_per_step": seconds / steps}
    if device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["mini", "paper"], choices=["mini", "paper"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--paper-per-class", type=int, default=8, help="images per class at 128x128")
    parser.add_argument("--mini-per-class", type=int, default=16, help="images per class at 32x32")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="mixed precision (DCT and first conv in fp32)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for profile in args.sizes:
        per_class = args.paper_per_class if profile == "paper" else args.mini_per_class
        pair = [measure(cls, profile, per_class, args.steps, args.warmup, device, args.amp)
                for cls in (BaseMethod, POSEMethod)]
        pair[1]["pose_over_base"] = pair[1]["seconds"] / pair[0]["seconds"]
        rows.extend(pair)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{platform.processor() or platform.machine()} cpu, {torch.get_num_threads()} threads")
    print(f"device: {where}; torch {torch.__version__}; amp {args.amp}")
    print(f"{'method':<6} {'size':>5} {'batch':>5} {'steps':>5} {'s/step':>8} {'img/s':>9} {'POSE/Base':>9}")
    for r in rows:
        ratio = f"{r['pose_over_base']:.2f}x" if "pose_over_base" in r else ""
        mem = f"  peak {r['peak_memory_gib']:.2f} GiB" if "peak_memory_gib" in r else ""
        print(f"{r['method']:<6} {r['image_size']:>5} {r['batch']:>5} {r['steps']:>5} {r['s_per_step']:>8.3f} "
              f"{r['images_per_s']:>9.1f} {ratio:>9}{mem}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": where, "amp": args.amp, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
