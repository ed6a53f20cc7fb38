"""Build throughput (images/s) with 1 and 2 workers, and peak memory at two sizes 10x apart.

Run: ``.venv/bin/python benchmarks/bench_build.py [--images 400] [--small 100] [--work /tmp/osma-bench-build]``.
Each build runs in its own process; the CPU time of all its processes is printed too, since on a
shared, loaded machine wall-clock rates mostly measure the other load. Peak memory is that process's maximum resident set size
(``ru_maxrss``), plus, with workers, the largest worker's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {bench!r})
from _images import flat_plan
from osma_bench.data.build import run_build
from osma_bench.data.preprocess import PreprocessConfig
root, out, count, workers = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
names = sorted(p.name for p in root.glob("*.png"))[:count]
start = time.perf_counter()
run_build(flat_plan(root, names), out, PreprocessConfig(size=128), workers=workers, shard_size=10000)
elapsed = time.perf_counter() - start
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
print(json.dumps({{"seconds": elapsed, "cpu_seconds": cpu, "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}}))
"""


def run_child(root: Path, out: Path, count: int, workers: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    code = CHILD.format(bench=str(Path(__file__).resolve().parent))
    proc = subprocess.run([sys.executable, "-c", code, str(root), str(out), str(count), str(workers)],
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=400, help="images for throughput and the large memory run")
    parser.add_argument("--small", type=int, default=0, help="images for the small memory run (default images/10)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/osma-bench-build"))
    args = parser.parse_args()
    from _images import make_png_folder

    small = args.small or max(1, args.images // 10)
    src = args.work / "png"
    t0 = time.perf_counter()
    make_png_folder(src, args.images)
    print(f"source: {args.images} PNG files of 256x192 in {src} (made in {time.perf_counter() - t0:.1f} s); "
          f"target 128x128; {resource.getpagesize()} B pages")
    rates = {}
    for workers in (1, 2):
        r = run_child(src, args.work / "out", args.images, workers)
        rates[workers] = args.images / r["seconds"]
        print(f"workers={workers}: {r['seconds']:.2f} s, {rates[workers]:.1f} images/s, "
              f"{1000 * r['cpu_seconds'] / args.images:.2f} CPU-ms per image (all processes), "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"speed-up 2 vs 1 worker: {rates[2] / rates[1]:.2f}x")
    for count in (small, args.images):
        r = run_child(src, args.work / "out", count, 1)
        print(f"peak memory, {count} images, 1 worker: {r['self_maxrss_kb'] / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
