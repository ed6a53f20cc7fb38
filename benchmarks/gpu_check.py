"""The steps of benchmarks/gpu_check.sh that run in Python (one sub-command per step).

Runs from the source tree with the machine's own interpreter (``PYTHONPATH=<repo>``, no install):
``packages`` uses the standard library only, so it can name what is missing before anything
imports torch. Every step writes its files into the output folder given as the first argument.

    python3 benchmarks/gpu_check.py packages OUT
    python3 benchmarks/gpu_check.py env OUT
    python3 benchmarks/gpu_check.py data OUT
    python3 benchmarks/gpu_check.py distributed OUT DEVICE
    python3 benchmarks/gpu_check.py methods OUT DEVICE
    python3 benchmarks/gpu_check.py summary OUT
"""

from __future__ import annotations

import importlib.util
import json
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Import name of each distribution in pyproject.toml whose name differs from its module.
MODULES = {"scikit-learn": "sklearn", "scikit-image": "skimage", "pillow": "PIL", "pyyaml": "yaml",
           "PyWavelets": "pywt"}
#: Distributions no step of the check needs (with the reason, recorded).
NOT_NEEDED = {"submitit": "only for osma-bench sweep --executor slurm"}
MIN_PYTHON = (3, 11)


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def requirements() -> list[tuple[str, str]]:
    """``(distribution, version specifier)`` of the project's dependencies, from pyproject.toml."""
    text = (REPO / "pyproject.toml").read_text()
    block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
    found = []
    for item in re.findall(r'"([^"]+)"', block.group(1) if block else ""):
        name = re.match(r"[A-Za-z0-9_.\-]+", item).group(0)
        found.append((name, item[len(name):]))
    return found


def packages(out: Path) -> int:
    """Name every missing package and record the versions found; 2 if the check cannot run."""
    rows, missing = [], []
    for dist, spec in requirements():
        module = MODULES.get(dist, dist.replace("-", "_"))
        row = {"distribution": dist, "module": module, "pinned": spec or "-"}
        found = importlib.util.find_spec(module) is not None  # found, not imported: quick for all
        try:
            row["version"] = metadata.version(dist) if found else None
        except metadata.PackageNotFoundError:  # importable without metadata (a source checkout)
            row["version"] = "unknown"
        if not found:
            row["error"] = f"no module named {module!r}"
            if dist not in NOT_NEEDED:
                missing.append(dist)
        if dist in NOT_NEEDED:
            row["needed"] = NOT_NEEDED[dist]
        rows.append(row)
    python_ok = sys.version_info[:2] >= MIN_PYTHON
    write_json(out / "packages.json", {"python": platform.python_version(), "executable": sys.executable,
                                       "python_ok": python_ok, "packages": rows, "missing": missing})
    print(f"python {platform.python_version()} ({sys.executable})" + ("" if python_ok else
          f": too old, the project needs {'.'.join(map(str, MIN_PYTHON))} or newer"))
    for row in rows:
        state = row["version"] or f"MISSING ({row['error']})"
        note = f"  [{row['needed']}]" if "needed" in row else ""
        print(f"  {row['distribution']:<14} {row['pinned']:<12} {state}{note}")
    if missing:
        print(f"missing packages: {', '.join(missing)}")
    if not python_ok or "torch" in missing:
        return 2
    return 1 if missing else 0


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({type(exc).__name__})"


def env(out: Path) -> int:
    """The machine: GPUs, driver, torch and its CUDA, cuDNN and NCCL, the CPU."""
    import torch

    from osma_bench.harness.precision import describe_cpu

    info = {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "gpu_count": torch.cuda.device_count(), "cpu": describe_cpu(), "cpu_count": _cpu_count(),
            "nvidia_smi": _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                                "--format=csv,noheader"])}
    if torch.cuda.is_available():
        info["cudnn"] = torch.backends.cudnn.version()
        try:
            info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
        except Exception as exc:
            info["nccl"] = f"unavailable ({exc})"
        info["gpus"] = [{"name": torch.cuda.get_device_name(i),
                         "capability": ".".join(map(str, torch.cuda.get_device_capability(i))),
                         "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
                        for i in range(torch.cuda.device_count())]
        info["bf16"] = torch.cuda.is_bf16_supported()
    write_json(out / "env.json", info)
    for key, value in info.items():
        print(f"{key}: {value}")
    return 0


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def data(out: Path) -> int:
    """A tiny synthetic dataset (3 known classes, 2 splits, 32x32) for the smoke runs."""
    from osma_bench.data import make_synthetic_dataset

    root = make_synthetic_dataset(out / "data" / "syn", num_known=3, per_class=(8, 4, 4), image_size=32,
                                  splits=2, overwrite=True)
    print(f"dataset: {root}")
    return 0


def distributed(out: Path, device: str) -> int:
    """``torchrun`` with 2 processes (NCCL on CUDA, gloo on the CPU): a smoke run of Base, whose run
    directory must be complete and record both processes."""
    run_dir = out / "runs_ddp" / "syn" / "base" / "split1" / "seed0"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "osma_bench.cli", "run", "--method", "base", "--data", str(out / "data" / "syn"), "--split", "1",
           "--seed", "0", "--profile", "smoke", "--device", device, "--out", str(out / "runs_ddp"), "--overwrite"]
    if device == "cpu":
        cmd += ["--set", "num_threads=1"]
    print(" ".join(cmd), flush=True)
    started = time.perf_counter()
    rc = subprocess.run(cmd).returncode
    record = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    spread = record.get("distributed", {})
    ok = rc == 0 and record.get("status") == "complete" and spread.get("world_size") == 2
    write_json(out / "distributed.json", {"command": cmd, "exit": rc, "seconds": round(time.perf_counter() - started, 2),
                                          "status": record.get("status"), "distributed": spread,
                                          "device": record.get("device"), "ok": ok})
    print(f"torchrun exit {rc}; run {record.get('status')}; {spread}")
    return 0 if ok else 1


def methods(out: Path, device: str) -> int:
    """A smoke-profile run of every registered method (and with amp=true where supported)."""
    import torch

    from osma_bench.errors import OsmaError
    from osma_bench.harness.precision import supports_amp
    from osma_bench.harness.runner import RunRequest, run
    from osma_bench.methods.registry import available_methods, get_method

    data_root = out / "data" / "syn"
    rows, failed = [], 0
    plan = [(name, False) for name in available_methods()]
    plan += [(name, True) for name, _ in plan if _supports(get_method, supports_amp, name)]
    for name, amp in plan:
        overrides = {"num_threads": "1"} if device == "cpu" else {}
        if amp:
            overrides["amp"] = "true"
        request = RunRequest(method=name, data=data_root, split=1, seed=0, profile="smoke", device=device,
                             out=out / ("runs_amp" if amp else "runs"), progress=False, overrides=overrides,
                             overwrite=True)
        row = {"method": name, "amp": amp}
        started = time.perf_counter()
        try:
            metrics = run(request).metrics
            row.update(status="complete", accuracy=metrics["closed_set"]["accuracy"],
                       auroc_all=metrics["open_set"]["all"]["auroc"])
        except OsmaError as exc:
            row.update(status="refused" if amp else "failed", error=str(exc))
            failed += not amp
        except Exception as exc:  # a crash of one method must not hide the others
            row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            failed += 1
        row["seconds"] = round(time.perf_counter() - started, 2)
        if device.startswith("cuda"):
            row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
            torch.cuda.reset_peak_memory_stats()
        rows.append(row)
        write_json(out / "methods.json", {"device": device, "runs": rows})  # after each: a time limit keeps what ran
        print(f"  {name:<10} {'amp' if amp else 'fp32':<4} {row['status']:<8} {row['seconds']:>6.1f} s"
              + (f"  {row['error']}" if "error" in row else ""), flush=True)
    return 1 if failed else 0


def _supports(get_method, supports_amp, name: str) -> bool:
    try:
        return supports_amp(get_method(name))
    except Exception:
        return False


def summary(out: Path) -> int:
    """summary.txt: each step's status, then the throughput table and the method runs."""
    lines = ["step            status   seconds  note"]
    for line in (out / "steps.tsv").read_text().splitlines():
        step, status, seconds, note = (line.split("\t") + ["", "", "", ""])[:4]
        lines.append(f"{step:<15} {status:<8} {seconds:>7}  {note}")
    throughput = out / "throughput.txt"
    if throughput.is_file():
        lines += ["", "throughput:"] + [s for s in throughput.read_text().splitlines() if s.strip()]
    runs = out / "methods.json"
    if runs.is_file():
        lines += ["", "method runs (smoke profile):"]
        for row in json.loads(runs.read_text())["runs"]:
            lines.append(f"  {row['method']:<10} {'amp' if row['amp'] else 'fp32':<4} {row['status']:<8} "
                         f"{row['seconds']:>6.1f} s" + (f"  {row['error']}" if "error" in row else ""))
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    step, out = argv[0], Path(argv[1])
    if step == "packages":
        return packages(out)
    if step == "env":
        return env(out)
    if step == "data":
        return data(out)
    if step == "distributed":
        return distributed(out, argv[2])
    if step == "methods":
        return methods(out, argv[2])
    if step == "summary":
        return summary(out)
    print(f"unknown step {step!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
