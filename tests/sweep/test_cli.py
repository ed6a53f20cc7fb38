"""``osma-bench sweep`` end to end with the real harness (smoke profile, synthetic data), and its errors."""

from __future__ import annotations

import json

import pytest

from osma_bench.cli import main
from osma_bench.data import make_synthetic_dataset
from osma_bench.errors import OsmaError


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "syn"
    return make_synthetic_dataset(root, num_known=3, per_class=(8, 4, 4), image_size=32, splits=2)


def sweep_args(data, out, *extra):
    return ["sweep", "--data", str(data), "--methods", "base,pose", "--splits", "1", "--seeds", "0",
            "--profile", "smoke", "--device", "cpu", "--out", str(out), *extra]


@pytest.mark.parametrize("extra,message", [
    (["--methods", "base,nope"], "unknown method(s) nope"),
    (["--splits", "3"], "split(s) 3 not in"),
    (["--seeds", "x"], "--seeds: 'x'"),
    (["--set", "no_such_key=1"], "unknown key 'no_such_key'"),
    (["--profile", "mini", "--set", "image_size=64"], "expects 64x64 images but"),
    (["--executor", "pbs"], "--executor must be one of local, slurm"),
    (["--slurm-time", "soon", "--executor", "slurm", "--submitit-cluster", "local"], "--slurm-time"),
    (["--methods", "base,prnu", "--procs-per-run", "2"], "prnu: does not support distributed training"),
    (["--procs-per-run", "2", "--set", "per_class=3"], "per_class=3 does not split over 2 processes"),
    (["--procs-per-run", "0"], "--procs-per-run must be at least 1"),
])
def test_user_errors_stop_before_any_run(synthetic, tmp_path, capsys, extra, message):
    assert main(sweep_args(synthetic, tmp_path / "res", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "res" / "syn").exists()


def test_damaged_dataset_is_refused_once(synthetic, tmp_path, capsys):
    import shutil

    copy = tmp_path / "syn"
    shutil.copytree(synthetic, copy)
    with open(copy / "splits.h5", "ab") as fh:
        fh.write(b"tampered")
    assert main(sweep_args(copy, tmp_path / "res")) == 2
    assert "failed verification" in capsys.readouterr().err


def test_dry_run_lists_the_plan(synthetic, tmp_path, capsys):
    assert main(sweep_args(synthetic, tmp_path / "res", "--splits", "all", "--seeds", "0-1", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "sweep plan: 8 runs on syn (smoke)" in out and out.count(" run ") >= 8
    assert not (tmp_path / "res").exists()


def test_local_sweep_failure_then_resume(synthetic, tmp_path, capsys):
    out = tmp_path / "res"
    # pose's run folder holds a damaged checkpoint: its resume fails, base is not affected
    broken = out / "syn" / "pose" / "split1" / "seed0"
    broken.mkdir(parents=True)
    (broken / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(sweep_args(synthetic, out, "--jobs", "2")) == 1
    text = capsys.readouterr().out
    assert "1 done, 1 failed" in text and "not a readable checkpoint" in text
    assert json.loads((out / "syn" / "base" / "split1" / "seed0" / "run.json").read_text())["status"] == "complete"

    (broken / "checkpoint.pt").unlink()
    assert main(sweep_args(synthetic, out, "--jobs", "2")) == 0
    text = capsys.readouterr().out
    assert "1 done, 1 already complete" in text and "pose split1 seed0 (resumed)" in text
    for method in ("base", "pose"):
        run_dir = out / "syn" / method / "split1" / "seed0"
        assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
        assert (run_dir / "metrics.json").is_file()
    record = json.loads((out / ".sweep" / "syn.sweep.json").read_text())
    assert record["counts"] == {"done": 1, "skipped": 1, "failed": 0, "cancelled": 0, "not run": 0}


def test_slurm_path_through_submitit_local(synthetic, tmp_path, capsys):
    out = tmp_path / "res"
    args = sweep_args(synthetic, out, "--executor", "slurm", "--submitit-cluster", "local", "--jobs", "2",
                      "--slurm-cpus", "1", "--slurm-time", "0:10:00", "--slurm-partition", "gpu")
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "submitit-local" in text and "2 done" in text
    for method in ("base", "pose"):
        metrics = json.loads((out / "syn" / method / "split1" / "seed0" / "metrics.json").read_text())
        assert set(metrics["open_set"]) == {"seed", "arch", "dataset", "all"}
    assert list((out / ".sweep" / "submitit").glob("*/*_result.pkl"))


def test_runs_of_several_processes_start_under_torchrun(synthetic, tmp_path, capsys, monkeypatch):
    """--procs-per-run 2: each run is ``torchrun --standalone --nproc-per-node 2 -m osma_bench.cli run``
    (two gloo processes on the CPU here), and the run records its two processes."""
    from osma_bench.sweep.command import RunSettings
    from osma_bench.sweep.grid import expand_grid

    point = expand_grid("syn", ["base"], [1], [0], tmp_path, tmp_path / "logs")[0]
    argv = RunSettings(data=synthetic, profile="smoke", out=tmp_path, processes=2).command(point)
    assert argv[1:9] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
                         "osma_bench.cli", "run"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "res"
    assert main(sweep_args(synthetic, out, "--methods", "base", "--procs-per-run", "2", "--threads", "1")) == 0
    record = json.loads((out / "syn" / "base" / "split1" / "seed0" / "run.json").read_text())
    assert record["status"] == "complete" and record["distributed"]["world_size"] == 2


def test_variant_runs_go_to_their_own_folders(synthetic, tmp_path):
    from osma_bench.sweep.plan import SweepRequest, plan, sweep_variant

    request = SweepRequest(data=synthetic, methods="pose", splits="1", seeds="0", profile="smoke",
                           out=tmp_path / "res", overrides=("w_div=0", "num_threads=1"), variant="auto",
                           verify=False)
    sweep = plan(request)
    assert sweep.points[0].run_dir == tmp_path / "res" / "syn" / "pose+w_div=0" / "split1" / "seed0"
    assert sweep.settings.command(sweep.points[0])[-2:] == ["--variant", "w_div=0"]
    assert sweep_variant("base_am", ()) == "base_am"
    with pytest.raises(OsmaError, match="--variant"):
        sweep_variant("../x", ())


def test_sweep_accepts_a_profile_file(synthetic, tmp_path):
    import yaml

    from osma_bench.harness.config import load_profile
    from osma_bench.sweep.plan import SweepRequest, plan

    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({**load_profile("smoke"), "epochs": 1}))
    sweep = plan(SweepRequest(data=synthetic, methods="base", splits="1", seeds="0", profile=str(path),
                              out=tmp_path / "res", verify=False))
    assert sweep.settings.command(sweep.points[0])[sweep.settings.command(sweep.points[0]).index("--profile") + 1] \
        == str(path)
    path.write_text(yaml.safe_dump({**load_profile("smoke"), "lr": -1}))
    with pytest.raises(OsmaError, match="lr: expected a float"):
        plan(SweepRequest(data=synthetic, methods="base", splits="1", seeds="0", profile=str(path),
                          out=tmp_path / "res", verify=False))
