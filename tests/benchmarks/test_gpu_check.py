"""benchmarks/gpu_check.sh: its CPU dry run makes every file a GPU session would bring back, and its
package check names what is missing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from osma_bench.harness.precision import describe_cpu
from osma_bench.methods.registry import available_methods

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
AMP_METHODS = {"base", "pose", "openmax", "proser", "arpl_cs", "dias"}
FILES = {"packages.json", "packages.log", "env.json", "env.log", "throughput.json", "throughput.txt", "data.log",
         "distributed.json", "distributed.log", "methods.json", "methods.log", "steps.tsv", "summary.txt"}


def check(*args: str, python: str = sys.executable, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": python, "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout)


def load_module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_dry_run_writes_every_file(tmp_path):
    out = tmp_path / "out"
    proc = check("--dry-run", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert FILES <= {p.name for p in out.iterdir()}
    steps = [line.split("\t")[:2] for line in (out / "steps.tsv").read_text().splitlines()]
    assert steps == [[name, "ok"] for name in ("packages", "env", "throughput", "data", "distributed", "methods")]

    packages = json.loads((out / "packages.json").read_text())
    assert packages["python_ok"] and packages["missing"] == []
    assert {p["distribution"]: p["version"] for p in packages["packages"]}["torch"] == metadata.version("torch")
    env = json.loads((out / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["cpu"]["name"] and "gpu_count" in env

    rows = json.loads((out / "throughput.json").read_text())["rows"]
    assert {(r["method"], r["precision"]) for r in rows} == {(m, p) for m in ("base", "pose")
                                                             for p in ("float32", "bfloat16")}
    assert all(r["images_per_s"] > 0 and r["image_size"] == 32 for r in rows)
    assert all("amp_over_float32" in r for r in rows if r["precision"] == "bfloat16")
    assert all("pose_over_base" in r for r in rows if r["method"] == "pose")

    spread = json.loads((out / "distributed.json").read_text())
    assert spread["ok"] and spread["distributed"] == {"world_size": 2, "backend": "gloo"}

    runs = json.loads((out / "methods.json").read_text())["runs"]
    fp32 = {r["method"]: r for r in runs if not r["amp"]}
    assert set(fp32) == set(available_methods()) and all(r["status"] == "complete" for r in fp32.values())
    amp = {r["method"]: r["status"] for r in runs if r["amp"]}
    expected = "refused" if describe_cpu()["bf16_kernels"] == "none" else "complete"
    assert amp == dict.fromkeys(AMP_METHODS, expected)
    assert (out / "runs" / "syn" / "pose" / "split1" / "seed0" / "metrics.json").is_file()
    summary = (out / "summary.txt").read_text()
    assert "throughput:" in summary and "method runs (smoke profile):" in summary


def test_bad_arguments_and_missing_python(tmp_path):
    proc = check("--frobnicate")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: unknown argument --frobnicate (see --help)"
    proc = check("--dry-run", "--out", str(tmp_path / "o"), python=str(tmp_path / "no-python"))
    assert proc.returncode == 2 and "error: no " in proc.stderr


def test_package_check_names_the_missing(tmp_path, monkeypatch):
    gpu_check = load_module()
    requirements = [("numpy", ">=1"), ("surely-not-installed-pkg", ">=1"), ("submitit", ">=1.5")]
    monkeypatch.setattr(gpu_check, "requirements", lambda: requirements)
    monkeypatch.setattr(gpu_check.importlib.util, "find_spec",
                        lambda name: None if name in ("surely_not_installed_pkg", "submitit") else object())
    assert gpu_check.packages(tmp_path) == 1
    report = json.loads((tmp_path / "packages.json").read_text())
    assert report["missing"] == ["surely-not-installed-pkg"]  # submitit is not needed by the check
    monkeypatch.setattr(gpu_check, "requirements", lambda: [("torch", "==2.14.1")])
    monkeypatch.setattr(gpu_check.importlib.util, "find_spec", lambda name: None)
    assert gpu_check.packages(tmp_path) == 2  # without torch nothing can run


def test_requirements_are_read_from_pyproject():
    names = [name for name, _ in load_module().requirements()]
    assert names[:2] == ["torch", "torchvision"] and "PyWavelets" in names and "h5py" in names
