"""End-to-end runs on a synthetic dataset: run directory, metrics, errors, resume, plugins."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from osma_bench.cli import main
from osma_bench.errors import OsmaError
from osma_bench.harness import checkpoint
from osma_bench.harness.runner import RunRequest, run
from osma_bench.methods.registry import describe_methods


def request(data, out, method="base", **kw):
    kw.setdefault("overrides", {})
    kw["overrides"].setdefault("num_threads", 1)  # CPUs shared with other jobs: avoid OpenMP spinning
    return RunRequest(method=method, data=data, split=1, seed=0, profile="smoke", device="cpu", out=out,
                      progress=False, **kw)


@pytest.mark.parametrize("method", ["base", "pose"])
def test_run_writes_a_complete_run_directory(synthetic, tmp_path, method):
    result = run(request(synthetic, tmp_path, method))
    path = tmp_path / "syn" / method / "split1" / "seed0"
    assert result.path == path
    assert {p.name for p in path.iterdir()} >= {"run.json", "metrics.json", "scores.h5", "log.txt",
                                                 "checkpoint.pt", "checkpoint_best.pt"}
    record = json.loads((path / "run.json").read_text())
    assert record["status"] == "complete" and record["method"] == method and record["profile"] == "smoke"
    assert record["config"]["epochs"] == 2 and record["epochs_completed"] == 2
    assert record["dataset_sha256"] and record["card_sha256"] and "torch" in record["library_versions"]
    assert len(record["history"]) == 2 and 0 <= record["selected_epoch"] < 2
    metrics = json.loads((path / "metrics.json").read_text())
    assert set(metrics["open_set"]) == {"seed", "arch", "dataset", "all"}
    assert 0 <= metrics["closed_set"]["accuracy"] <= 1 and metrics["closed_set"]["n"] == 12
    with h5py.File(path / "scores.h5") as fh:
        assert list(np.bincount(fh["group"][:])) == [12, 4, 4, 4]
        assert fh["logits"].shape == (24, 3) and fh["features"].shape == (24, 512)
        if method == "pose":  # the 12 known test images through each epoch's augmentation model
            assert fh["augmented/features"].shape == (24, 512)
            assert list(fh["augmented/source"][:]) == [b"aug_0"] * 12 + [b"aug_1"] * 12
        else:
            assert "augmented" not in fh
    state = checkpoint.load(path / "checkpoint.pt")
    assert state["epoch"] == 2 and isinstance(state["state"]["model"], dict)
    assert "epoch 2/2" in (path / "log.txt").read_text()


def test_existing_run_dir_refused_then_resume_and_overwrite(synthetic, tmp_path, capsys):
    args = ["run", "--method", "base", "--data", str(synthetic), "--profile", "smoke", "--device", "cpu",
            "--out", str(tmp_path), "--no-progress", "--set", "num_threads=1"]
    assert main(args) == 0
    assert main(args) == 2
    assert "run directory exists; pass --resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert "already complete" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--set", "lr=0.01"]) == 0
    record = json.loads((tmp_path / "syn/base/split1/seed0/run.json").read_text())
    assert record["config"]["lr"] == 0.01


@pytest.mark.parametrize(("argv", "message"), [
    (["--method", "nope"], "unknown method 'nope'; known methods: .*base.*pose.*toy"),
    (["--split", "9"], "no split 9"),
    (["--device", "cuda"], "CUDA is not available"),
    (["--set", "bogus=1"], "unknown key"),
    (["--profile", "huge"], "unknown profile"),
])
def test_user_errors(synthetic, tmp_path, capsys, argv, message):
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    base = {"--method": "base", "--data": str(synthetic), "--profile": "smoke", "--device": "cpu",
            "--out": str(tmp_path)}
    base.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    code = main(["run", *[x for kv in base.items() for x in kv]])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ")
    import re

    assert re.search(message, err), err


def test_missing_and_corrupt_dataset(synthetic, tmp_path):
    with pytest.raises(OsmaError, match="dataset folder not found"):
        run(request(tmp_path / "absent", tmp_path / "out"))
    broken = tmp_path / "broken"
    shutil.copytree(synthetic, broken)
    shard = broken / "images-00000.h5"
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(OsmaError, match="failed verification.*SHA-256"):
        run(request(broken, tmp_path / "out"))


def test_image_size_mismatch(synthetic, tmp_path):
    with pytest.raises(OsmaError, match="stores 32x32 images but profile 'paper' expects 128"):
        run(RunRequest(method="base", data=synthetic, split=1, profile="paper", device="cpu", out=tmp_path,
                       progress=False))


def test_outside_plugin_runs_by_name(synthetic, tmp_path, capsys):
    assert main(["methods"]) == 0
    assert "toy" in capsys.readouterr().out
    info = {i.name: i for i in describe_methods()}["toy"]
    assert info.package == "osma-bench-toy-plugin" and info.error is None
    assert main(["run", "--method", "toy", "--data", str(synthetic), "--profile", "smoke", "--device", "cpu",
                 "--out", str(tmp_path), "--no-progress", "--set", "num_threads=1"]) == 0
    record = json.loads((tmp_path / "syn/toy/split1/seed0/run.json").read_text())
    assert record["status"] == "complete" and record["method_version"].startswith("osma-bench-toy-plugin")


def test_resume_after_sigkill_matches_uninterrupted_run(synthetic, tmp_path):
    """Kill a run mid-epoch (SIGKILL), resume it, and get the same numbers as a clean run."""
    opts = ["--method", "pose", "--data", str(synthetic), "--profile", "smoke", "--device", "cpu",
            "--epochs", "3", "--set", "steps_per_epoch=16", "--set", "num_threads=1", "--no-progress", "--no-verify"]
    cmd = [sys.executable, "-m", "osma_bench.cli", "run", *opts]
    run(request(synthetic, tmp_path / "clean", "pose", epochs=3, overrides={"steps_per_epoch": 16}, verify=False))
    out = tmp_path / "killed"
    log = out / "syn/pose/split1/seed0/log.txt"
    proc = subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and "epoch 1/3" in log.read_text()):
        time.sleep(0.05)
    time.sleep(0.2)  # into epoch 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_dir = out / "syn/pose/split1/seed0"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    assert checkpoint.load(run_dir / "checkpoint.pt")["epoch"] < 3
    resumed = subprocess.run([*cmd, "--out", str(out), "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after epoch" in log.read_text()
    assert "resumed after epoch" in resumed.stderr  # on the console too, not only in log.txt
    a = json.loads((tmp_path / "clean/syn/pose/split1/seed0/metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    assert a == b
    with h5py.File(tmp_path / "clean/syn/pose/split1/seed0/scores.h5") as fa, h5py.File(run_dir / "scores.h5") as fb:
        assert np.array_equal(fa["score"][:], fb["score"][:]) and np.array_equal(fa["logits"][:], fb["logits"][:])


# -- the fair protocol: provenance, sources, variants, resume --------------------------------------

def test_run_json_records_sources_and_provenance(synthetic, tmp_path):
    run(request(synthetic, tmp_path, "base", overrides={"num_threads": "1", "dropout": "0.1"}))
    record = json.loads((tmp_path / "syn" / "base" / "split1" / "seed0" / "run.json").read_text())
    hp = record["hyperparameters"]
    assert hp["dropout"] == {"value": 0.1, "source": "--set", "kind": "method"}
    assert hp["lr"]["source"] == "profile smoke" and hp["lr"]["kind"] == "budget"
    assert hp["num_threads"]["kind"] == "runtime"
    prov = record["provenance"]
    assert prov["package_version"] and prov["torch"] == torch.__version__ and prov["device"] == "cpu"
    assert set(prov) >= {"git_commit", "git_dirty", "python", "torch_threads"}
    assert record["variant"] is None and record["budget_departures"] == {}


def test_variant_gets_its_own_folder_and_report_row(synthetic, tmp_path):
    from osma_bench.report import build_report

    run(request(synthetic, tmp_path, "pose"))
    result = run(request(synthetic, tmp_path, "pose", overrides={"w_div": "0"}, variant="auto"))
    assert result.path == tmp_path / "syn" / "pose+w_div=0" / "split1" / "seed0"
    labels = [r.label for s in build_report(tmp_path).sections for r in s.rows]
    assert labels == ["pose", "pose [w_div=0]"]


def test_resume_ignores_runtime_keys_and_names_every_differing_key(synthetic, tmp_path):
    from osma_bench.harness.runner import RunRequest

    base = request(synthetic, tmp_path, "base", overrides={"num_threads": "2"}, epochs=2)
    path = tmp_path / "syn" / "base" / "split1" / "seed0"
    run(base)
    record = json.loads((path / "run.json").read_text())
    record["status"] = "failed"  # as if interrupted: resume must go through the checkpoint check
    (path / "run.json").write_text(json.dumps(record))
    again = RunRequest(**{**base.__dict__, "overrides": {"num_threads": "1"}, "resume": True})
    assert run(again).metrics  # threads differ: a runtime key, the resume is accepted
    (path / "run.json").write_text(json.dumps(record))
    changed = RunRequest(**{**base.__dict__, "overrides": {"lr": "0.01", "dropout": "0.5"}, "resume": True})
    with pytest.raises(OsmaError, match=r"other settings \(dropout: 0\.2 -> 0\.5; lr: 0\.001 -> 0\.01\)"):
        run(changed)


def test_report_never_pools_two_real_runs_differing_in_one_set_value(synthetic, tmp_path):
    from osma_bench.harness.runner import RunRequest
    from osma_bench.report import build_report

    first = request(synthetic, tmp_path, "base")
    run(first)
    run(RunRequest(**{**first.__dict__, "seed": 1, "overrides": {"num_threads": "1", "per_class": "3"}}))
    section = build_report(tmp_path).sections[0]
    assert sorted((r.label, r.n) for r in section.rows) == [("base (A)", 1), ("base (B)", 1)]
    assert "differ in per_class (2 / 3)" in section.notes[0] or "differ in per_class (3 / 2)" in section.notes[0]
