"""CPU thread settings under competing load: torch's default vs 1 thread vs the auto policy.

For 0, 1, 2 and 4 competing CPU-bound processes (pure-Python busy loops started by this script),
times a few Base training steps at mini size (32x32, width 32, 10 classes x 16 images, random
data) in fresh child processes (one per OpenMP environment, since OpenMP reads it at start):

- ``default``: torch's own default (one thread per core; no ``OMP_NUM_THREADS``), the old policy;
- ``1`` (and ``N/2`` on 4 or more cores): ``torch.set_num_threads``;
- ``auto``: what ``osma-bench run`` now does with ``num_threads = 0``: the thread count of
  ``osma_bench.harness.threads.choose_threads(0)`` (one per usable core) with
  ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep instead of spinning);
- ``1 passive``: one thread, also passive.

The settings of one environment are timed in one child, interleaved; the two environments'
children alternate ``--repeats`` times and the best time of each setting is kept.

Prints seconds per step, each setting's ratio to the best setting of its condition, and auto
over the old default. Run by hand, never as a timed test (about 25 minutes on the 2-core
development machine at load 8-10, much less on a quiet machine)::

    .venv/bin/python benchmarks/bench_threads.py [--steps 4] [--repeats 2] [--competitors 0,1,2,4] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

BUSY_LOOP = "while True:\n    pass\n"


def child(settings: list[str], steps: int, warmup: int, repeats: int) -> None:
    """Time ``steps`` Base training steps per setting (best of ``repeats``, settings interleaved);
    print one JSON line. ``auto`` is decided first, before this process does any work."""
    import torch

    from osma_bench.harness.config import load_profile
    from osma_bench.harness.threads import choose_threads
    from osma_bench.methods.api import MethodSpec
    from osma_bench.methods.base_cnn import BaseMethod

    default = torch.get_num_threads()
    auto = choose_threads(0)
    counts = {s: auto.threads if s == "auto" else default if s == "default" else int(s) for s in settings}
    config = load_profile("mini")
    classes, per_class, size = 10, int(config["per_class"]), int(config["image_size"])
    hp = BaseMethod.resolve_hparams("mini", config)
    torch.manual_seed(0)
    method = BaseMethod(MethodSpec(classes, size, torch.device("cpu"), hp, seed=0, epochs=2,
                                   steps_per_epoch=steps, profile="mini"))
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(classes).repeat_interleave(per_class)
    data = [(torch.rand(len(labels), 3, size, size, generator=gen) * 2 - 1, labels) for _ in range(steps)]
    method.train_epoch(iter(data[:warmup]), 0)
    best = {s: float("inf") for s in settings}
    for rep in range(repeats):
        for setting in settings[rep % len(settings):] + settings[:rep % len(settings)]:
            torch.set_num_threads(counts[setting])
            method.train_epoch(iter(data[:1]), 1)  # the new thread count's first region
            start = time.perf_counter()
            method.train_epoch(iter(data), 1)
            best[setting] = min(best[setting], (time.perf_counter() - start) / steps)
    print(json.dumps({"s_per_step": best, "threads": counts, "auto_reason": auto.reason}))


def run_child(settings: list[str], args, passive: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [sys.executable, __file__, "--child", ",".join(settings), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--repeats", "1"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="timings per setting (best kept)")
    parser.add_argument("--competitors", default="0,1,2,4", help="comma-separated counts of busy processes")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child.split(","), args.steps, args.warmup, args.repeats)
        return
    from osma_bench.harness.threads import usable_cpus

    cores = len(usable_cpus())
    counts = ["1"] + ([str(cores // 2)] if cores >= 4 else [])
    active_settings = ["default", *counts]
    passive_settings = ["1", "auto"]
    names = [f"default ({cores})", *counts, "1 passive", "auto"]
    results = []
    for count in (int(c) for c in args.competitors.split(",")):
        hogs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
        times = {n: float("inf") for n in names}
        chosen, reasons = [], []
        try:
            time.sleep(1.0 if count else 0.0)
            load = os.getloadavg()[0]
            for _ in range(args.repeats):  # the two environments alternate; best of the repeats kept
                active = run_child(active_settings, args)
                passive = run_child(passive_settings, args, passive=True)
                got = [active["s_per_step"][s] for s in active_settings] + [passive["s_per_step"][s]
                                                                            for s in passive_settings]
                times = {n: min(times[n], t) for n, t in zip(names, got, strict=True)}
                chosen.append(passive["threads"]["auto"])
                reasons.append(passive["auto_reason"])
        finally:
            for proc in hogs:
                proc.kill()
                proc.wait()
        best = min(times.values())
        results.append({"competitors": count, "loadavg_1min": load, "s_per_step": times, "best": best,
                        "auto_threads": chosen, "auto_reasons": reasons})
        print(f"{count} competing (load {load:.1f}): " + "  ".join(f"{k} {v:.3f}s" for k, v in times.items())
              + f"  [auto chose {chosen}: {'; '.join(reasons)}]", flush=True)
    print(f"\n{platform.processor() or platform.machine()}, {cores} usable cores; Base, mini size (batch 160), "
          f"best of {args.repeats} x {args.steps} steps; s/step and ratio to the row's best setting")
    print(f"{'competing':>9} " + " ".join(f"{n:>14}" for n in names) + f" {'auto/default':>12}")
    for res in results:
        cells = [f"{v:.3f} {v / res['best']:.2f}x" for v in res["s_per_step"].values()]
        ratio = res["s_per_step"]["auto"] / res["s_per_step"][names[0]]
        print(f"{res['competitors']:>9} " + " ".join(f"{c:>14}" for c in cells) + f" {ratio:>11.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cores": cores, "steps": args.steps, "repeats": args.repeats, "results": results}, fh,
                      indent=2)


if __name__ == "__main__":
    main()
