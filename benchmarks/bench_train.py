"""Training throughput of Base and POSE in float32 and with mixed precision, side by side.

Measures full training steps (augmentation steps included) on random class-balanced batches (no
data loading), after warm-up, with POSE in its steady state (epoch >= 1: an earlier augmentation
model exists, so every step runs both triplet terms). Settings are the harness's resolved
configuration of each profile: ``mini`` (32x32, width 32, 10 classes x 16 images), ``paper``
(128x128, width 64, 15 classes x 8 images; ``--paper-per-class`` lowers the batch on a CPU) and
``smoke`` (32x32, width 8, 3 classes x 2 images: a seconds-long check of the script itself).
``amp`` is ``--set amp=true`` (bfloat16 autocast unless ``--amp-dtype float16``; the DCT, the first
convolution and the losses in float32). Prints the CPU (name, flags, how it runs bfloat16) or GPU,
then per size the img/s of each method and precision, amp / float32 and POSE / Base; on the CPU
also img/s per CPU-second of the process (``time.process_time``), the figure to compare on a
machine that other jobs share (the ratios are then taken from it). Run by hand, never as a timed
test::

    .venv/bin/python benchmarks/bench_train.py --threads 1 --steps 5 --amp-steps 1
    .venv/bin/python benchmarks/bench_train.py --device cuda --sizes paper --steps 200

``--json PATH`` writes the rows; on CUDA each row also has the peak memory.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from osma_bench.harness.config import resolve
from osma_bench.harness.precision import describe_cpu
from osma_bench.methods.api import MethodSpec
from osma_bench.methods.base_cnn import BaseMethod
from osma_bench.methods.pose import POSEMethod

CLASSES = {"smoke": 3, "mini": 10, "paper": 15}
PRECISIONS = ("float32", "amp")


def batches(num_classes: int, per_class: int, size: int, steps: int, device: torch.device):
    gen = torch.Generator(device=device).manual_seed(0)  # made on the device: no host-side cost in the timing
    labels = torch.arange(num_classes, device=device).repeat_interleave(per_class)
    for _ in range(steps):
        yield torch.rand(len(labels), 3, size, size, generator=gen, device=device) * 2 - 1, labels


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(cls, profile: str, per_class: int, steps: int, warmup: int, device: torch.device, amp: bool,
            amp_dtype: str) -> dict:
    """Seconds and img/s of ``steps`` training steps after ``warmup`` (epoch 0) steps."""
    config = resolve(cls, profile, {"amp": amp, "amp_dtype": amp_dtype}).values
    size, classes = int(config["image_size"]), CLASSES[profile]
    torch.manual_seed(0)
    method = cls(MethodSpec(classes, size, device, config, seed=0, epochs=2, steps_per_epoch=steps, profile=profile))
    method.train_epoch(batches(classes, per_class, size, warmup, device), 0)  # warm-up; POSE keeps an aug model
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    method.train_epoch(batches(classes, per_class, size, steps, device), 1)
    sync(device)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    images = steps * classes * per_class
    row = {"method": cls.name, "profile": profile, "image_size": size, "width": int(config["width"]),
           "batch": classes * per_class, "precision": amp_dtype if amp else "float32", "steps": steps,
           "seconds": seconds, "images_per_s": images / seconds, "s_per_step": seconds / steps}
    if device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    else:  # CPU time: what the process itself used, so a shared machine's load counts less
        row.update(cpu_seconds=cpu_seconds, images_per_cpu_s=images / cpu_seconds)
    return row


def describe_device(device: torch.device) -> dict:
    """What the figures depend on: the GPU, or the CPU's name, flags and bfloat16 kernels."""
    info = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                    bf16=torch.cuda.is_bf16_supported())
    else:
        info.update(cpu=describe_cpu())
    return info


def header(info: dict) -> str:
    if "gpu" in info:
        return f"device: {info['gpu']} (CUDA {info['cuda']}); torch {info['torch']}"
    cpu = info["cpu"]
    return (f"device: {cpu['name']}, {info['threads']} thread(s); flags {' '.join(cpu['flags']) or '-'}; "
            f"torch {info['torch']} ({cpu['capability']}); bfloat16 kernels: {cpu['bf16_kernels']}")


def ratios(rows: list[dict]) -> None:
    """Add ``amp_over_float32`` (speed-up) and ``pose_over_base`` (cost) where both rows exist."""
    by_key = {(r["method"], r["profile"], r["precision"]): r for r in rows}
    for r in rows:
        fp32 = by_key.get((r["method"], r["profile"], "float32"))
        base = by_key.get(("base", r["profile"], r["precision"]))
        for speed in ("images_per_s", "images_per_cpu_s"):
            tag = "" if speed == "images_per_s" else "_cpu"
            if r["precision"] != "float32" and fp32 and speed in r:
                r[f"amp_over_float32{tag}"] = r[speed] / fp32[speed]
            if r["method"] == "pose" and base and speed in r:
                r[f"pose_over_base{tag}"] = base[speed] / r[speed]


def table(rows: list[dict]) -> str:
    """img/s (wall clock; on the CPU also per CPU-second), amp / float32 and POSE / Base of each."""
    cpu = any("images_per_cpu_s" in r for r in rows)
    lines = [f"{'method':<6} {'size':>5} {'batch':>5} {'precision':>9} {'steps':>5} {'s/step':>8} {'img/s':>9} "
             + (f"{'img/cpu-s':>9} " if cpu else "") + f"{'amp/fp32':>8} {'POSE/Base':>9}"]

    def ratio(r, key):
        return f"{r[key]:.3g}x" if key in r else ""

    for r in rows:
        speed = ratio(r, "amp_over_float32_cpu" if cpu else "amp_over_float32")
        cost = ratio(r, "pose_over_base_cpu" if cpu else "pose_over_base")
        per_cpu = f"{r['images_per_cpu_s']:>9.1f} " if cpu else ""
        mem = f"  peak {r['peak_memory_gib']:.2f} GiB" if "peak_memory_gib" in r else ""
        lines.append(f"{r['method']:<6} {r['image_size']:>5} {r['batch']:>5} {r['precision']:>9} {r['steps']:>5} "
                     f"{r['s_per_step']:>8.3f} {r['images_per_s']:>9.1f} {per_cpu}{speed:>8} {cost:>9}{mem}")
    if cpu:
        lines.append("ratios from CPU time (img/cpu-s); wall-clock ratios are in the JSON")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["mini", "paper"], choices=list(CLASSES))
    parser.add_argument("--methods", nargs="+", default=["base", "pose"], choices=["base", "pose"])
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--steps", type=int, default=5, help="measured steps per method (float32)")
    parser.add_argument("--amp-steps", type=int, default=None,
                        help="measured steps with amp (default --steps; fewer where amp is emulated and slow)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--paper-per-class", type=int, default=8, help="images per class at 128x128")
    parser.add_argument("--mini-per-class", type=int, default=16, help="images per class at 32x32")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp-dtype", default="bfloat16", choices=["bfloat16", "float16"])
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = describe_device(device)
    print(header(info), flush=True)
    rows = []
    for profile in args.sizes:
        per_class = {"paper": args.paper_per_class, "mini": args.mini_per_class}.get(profile, 2)
        for precision in args.precisions:
            amp = precision == "amp"
            steps = args.amp_steps if amp and args.amp_steps else args.steps
            for cls in (c for c in (BaseMethod, POSEMethod) if c.name in args.methods):
                rows.append(measure(cls, profile, per_class, steps, args.warmup, device, amp, args.amp_dtype))
                r = rows[-1]
                per_cpu = f", {r['images_per_cpu_s']:.1f} per CPU-second" if "images_per_cpu_s" in r else ""
                print(f"  {r['method']} {profile} {r['precision']}: {r['images_per_s']:.1f} img/s{per_cpu}", flush=True)
    ratios(rows)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": info, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
