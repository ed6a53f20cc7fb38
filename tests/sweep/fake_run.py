"""A stand-in for ``osma-bench run`` in the sweep tests: writes a run directory like the harness.

Usage: ``python fake_run.py RUN_DIR MODE LEDGER SLEEP_S``. MODE is ``ok`` (write a complete run),
``fail`` (record a failure in run.json, print an error, exit 2), ``crash`` (die by SIGKILL),
``noop`` (exit 0 without writing anything). Every start appends one JSON line to LEDGER (run dir,
whether run.json already existed, start/end times, OMP_NUM_THREADS). SIGINT while sleeping marks
the run interrupted and exits 130, as the harness does.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def main() -> int:
    run_dir, mode, ledger, sleep_s = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
    entry = {"run_dir": str(run_dir), "resumed": (run_dir / "run.json").is_file(), "start": time.time(),
             "threads": os.environ.get("OMP_NUM_THREADS"), "mode": mode}
    if mode == "noop":
        return 0
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"status": "running", "profile": "smoke", "config": {"epochs": 2}, "epochs_completed": 0}
    write(run_dir / "run.json", record)
    print(f"start {run_dir.name}", flush=True)
    try:
        time.sleep(sleep_s)
        if mode == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        record["epochs_completed"] = 1
        write(run_dir / "run.json", record)
        print("epoch 1/2 loss 0.5", flush=True)
        if mode == "fail":
            record.update(status="failed", error="ValueError: boom in epoch 2")
            write(run_dir / "run.json", record)
            print("Traceback (most recent call last):\nValueError: boom in epoch 2", file=sys.stderr, flush=True)
            return 2
        record.update(status="complete", epochs_completed=2)
        write(run_dir / "metrics.json", {"closed_set": {"accuracy": 0.5}, "open_set": {"all": {"auroc": 0.75}}})
        write(run_dir / "run.json", record)
        print("epoch 2/2 loss 0.1", flush=True)
        return 0
    except KeyboardInterrupt:
        record.update(status="failed", error="interrupted")
        write(run_dir / "run.json", record)
        return 130
    finally:
        entry["end"] = time.time()
        with open(ledger, "a") as fh:
            fh.write(json.dumps(entry) + "\n")


if __name__ == "__main__":
    sys.exit(main())
