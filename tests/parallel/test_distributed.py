"""Data-parallel training: N processes on shares of each batch compute what one process computes.

The collective checks run once under ``torchrun`` with 2 gloo processes on the CPU
(distributed_worker.py) and are compared with the same computations in this process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from osma_bench.errors import OsmaError
from osma_bench.parallel import (
    SINGLE_PROCESS,
    GlobalBatchNorm2d,
    ShardedBatchSampler,
    TurnTakingBatchSampler,
    convert_batchnorm,
)

HERE = Path(__file__).parent
VENV_BIN = Path(sys.executable).parent


def _load_worker():
    spec = importlib.util.spec_from_file_location("distributed_worker", HERE / "distributed_worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


worker = _load_worker()


def torchrun(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node 2`` with one CPU thread per process."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- no processes needed


class ListSampler:
    def __init__(self, batches):
        self.batches = batches
        self.epoch = None

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def test_sharded_sampler_gives_contiguous_shares_that_rebuild_the_batch():
    batches = [list(range(0, 12)), list(range(12, 24))]
    shares = [list(ShardedBatchSampler(ListSampler(batches), rank, 3)) for rank in range(3)]
    assert shares[1][0] == [4, 5, 6, 7]
    for step in range(2):
        assert sum((shares[r][step] for r in range(3)), []) == batches[step]
    sampler = ListSampler(batches)
    sharded = ShardedBatchSampler(sampler, 0, 2)
    sharded.set_epoch(5)
    assert sampler.epoch == 5 and len(sharded) == 2


def test_sharded_sampler_refuses_a_batch_that_does_not_split_evenly():
    with pytest.raises(OsmaError, match="cannot be split over 2 processes"):
        list(ShardedBatchSampler(ListSampler([[0, 1, 2]]), 0, 2))


def test_turn_taking_sampler_gives_each_batch_to_one_process():
    batches = [[i] for i in range(5)]
    taken = [list(TurnTakingBatchSampler(ListSampler(batches), r, 2)) for r in range(2)]
    assert taken == [[[0], [2], [4]], [[1], [3]]]
    assert [len(TurnTakingBatchSampler(ListSampler(batches), r, 2)) for r in range(2)] == [3, 2]


def test_convert_batchnorm_keeps_parameters_buffers_and_state_dict_keys():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm2d(4)))
    weight = model[1].weight
    keys = list(model.state_dict())
    convert_batchnorm(model)
    assert isinstance(model[1], GlobalBatchNorm2d) and isinstance(model[2][0], GlobalBatchNorm2d)
    assert model[1].weight is weight
    assert list(model.state_dict()) == keys


def test_single_process_world_is_the_identity():
    x = torch.randn(3, 2, requires_grad=True)
    assert SINGLE_PROCESS.gather(x) is x and SINGLE_PROCESS.global_mean(x) is x
    assert SINGLE_PROCESS.is_main and not SINGLE_PROCESS.distributed


# --------------------------------------------------------------------------- 2 processes (gloo)


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    # POSE is compared on a step of epoch 1 (an earlier augmentation model exists), from one state.
    pose = worker.make_method("pose", SINGLE_PROCESS, torch.device("cpu"), None)
    images, labels = worker.batch()
    pose.train_epoch([(images, labels)], 0)
    torch.save(pose.state_dict(), out / "pose_state.pt")
    done = torchrun(str(HERE / "distributed_worker.py"), str(out), str(out / "pose_state.pt"), cwd=out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, torch.load(out / "rank0.pt", weights_only=True)


def _assert_close(single: dict, multi: dict, rtol: float = 1e-4, scale_tol: float = 1e-5):
    """Equal up to float rounding: relative ``rtol``, and an absolute tolerance of ``scale_tol``
    times the largest magnitude among the compared tensors (summation order changes the last bits
    of sums whose terms are much larger than the result)."""
    assert single.keys() == multi.keys()
    scale = max(float(t.abs().max()) for t in single.values() if t.numel())
    for key in single:
        torch.testing.assert_close(multi[key], single[key], rtol=rtol, atol=scale_tol * scale,
                                   msg=lambda m, k=key: f"{k}: {m}")


def test_global_batchnorm_over_two_processes_equals_batchnorm_on_the_whole_batch(two_process_results):
    _, multi = two_process_results
    assert multi["world_size"] == 2
    reference = worker.batchnorm_check(SINGLE_PROCESS)  # plain BatchNorm2d on the whole batch
    single = {k: v for k, v in reference.items() if not k.startswith("state.")}
    _assert_close(single, {k: multi["bn"][k] for k in single})
    state = {k: v.double() for k, v in reference.items() if k.startswith("state.")}
    assert state, "no running statistics compared"
    _assert_close(state, {k: multi["bn"][k].double() for k in state})


def test_gather_and_global_mean_give_the_single_process_gradient(two_process_results):
    _, multi = two_process_results
    _assert_close(worker.gather_check(SINGLE_PROCESS), multi["gather"])


@pytest.mark.parametrize("name, epoch", [("base", 0), ("pose", 1)])
def test_training_step_gradients_match_one_process(two_process_results, name, epoch):
    """Every optimiser step of a Base step and a POSE step (augmentation model, then classifier,
    with an earlier augmentation model and the cls_pre term) sees the single-process gradient."""
    out, multi = two_process_results
    state = out / "pose_state.pt" if name == "pose" else None
    single = worker.step_gradients(name, SINGLE_PROCESS, torch.device("cpu"), state, epoch)
    assert len(single) == len(multi[name]) == (2 if name == "pose" else 1)
    for one, two in zip(single, multi[name], strict=True):
        _assert_close(one, two)


# --------------------------------------------------------------------------- osma-bench run under torchrun


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from osma_bench.data import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("ddpdata") / "syn", num_known=3, per_class=(8, 4, 4),
                                  image_size=32, splits=1)


def _run_args(data: Path, out: Path, method: str = "base") -> list[str]:
    return ["run", "--method", method, "--data", str(data), "--split", "1", "--profile", "smoke", "--device",
            "cpu", "--set", "dropout=0", "--set", "num_threads=1", "--out", str(out), "--no-progress"]


def test_osma_bench_run_under_torchrun_matches_a_single_process_run(tiny_data, tmp_path):
    from osma_bench.nn import SimpleCNN

    single = subprocess.run([str(VENV_BIN / "osma-bench"), *_run_args(tiny_data, tmp_path / "one")],
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    multi = torchrun("--no-python", str(VENV_BIN / "osma-bench"), *_run_args(tiny_data, tmp_path / "two"),
                     cwd=tmp_path)
    assert multi.returncode == 0, multi.stderr[-3000:]
    one, two = (tmp_path / d / "syn" / "base" / "split1" / "seed0" for d in ("one", "two"))
    record = json.loads((two / "run.json").read_text())
    assert record["status"] == "complete" and record["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert (two / "metrics.json").is_file() and (two / "scores.h5").is_file()
    assert "2 processes" in (two / "log.txt").read_text()
    assert multi.stdout.count("accuracy") == 1  # rank 0 alone reports
    # The learned function is the same: training-mode outputs (batch statistics) of the two final
    # models agree to float rounding. Eval-mode outputs may differ by about lr: the convolution
    # biases in front of BatchNorm get rounding-noise gradients (their true gradient is 0), which
    # Adam turns into steps of size lr that shift the running means differently.
    images, _ = worker.batch()
    outputs = []
    for run_dir in (one, two):
        model = SimpleCNN(3, image_size=32, width=8, dropout=0.0)
        model.load_state_dict(torch.load(run_dir / "checkpoint.pt", weights_only=True)["state"]["model"])
        with torch.no_grad():
            outputs.append(model.train()(images)[0])
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-3, atol=1e-4)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m1["closed_set"]["accuracy"] == pytest.approx(m2["closed_set"]["accuracy"], abs=0.1)


def test_a_method_without_distributed_support_is_refused(tiny_data, tmp_path, monkeypatch):
    from osma_bench.harness import runner
    from osma_bench.parallel import World

    class TwoProcesses(World):
        size = 2

    monkeypatch.setattr(runner, "world_from_env", lambda device: (TwoProcesses(), torch.device("cpu")))
    request = runner.RunRequest(method="prnu", data=tiny_data, split=1, profile="smoke", device="cpu",
                                out=tmp_path, progress=False)
    with pytest.raises(OsmaError, match="does not support distributed training"):
        runner.run(request)
    request = runner.RunRequest(method="base", data=tiny_data, split=1, profile="smoke", device="cpu",
                                out=tmp_path, progress=False, overrides={"per_class": 3})
    with pytest.raises(OsmaError, match="cannot be split evenly over 2 processes"):
        runner.run(request)
