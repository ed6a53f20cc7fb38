"""The CPU thread policy: num_threads, OMP_NUM_THREADS, usable cores (affinity, cgroup quota), passive wait."""

from __future__ import annotations

import json

import pytest
import torch

from osma_bench.harness import threads
from osma_bench.harness.runner import RunRequest, run


@pytest.mark.parametrize(("text", "expected"), [("max 100000\n", None), ("150000 100000\n", 1.5),
                                                ("200000 50000", 4.0), ("garbage", None)])
def test_cgroup_quota_in_cores(tmp_path, text, expected):
    path = tmp_path / "cpu.max"
    path.write_text(text)
    assert threads.cgroup_cpu_limit(str(path)) == expected
    assert threads.cgroup_cpu_limit(str(tmp_path / "absent")) is None


def test_choice_order_num_threads_then_environment_then_usable_cores(monkeypatch):
    assert threads.choose_threads(3, env={"OMP_NUM_THREADS": "2"}) == threads.ThreadChoice(3, "num_threads")
    assert threads.choose_threads(0, env={"OMP_NUM_THREADS": "2"}) == threads.ThreadChoice(2, "OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "usable_cpus", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    choice = threads.choose_threads(0, env={"OMP_NUM_THREADS": "0"})  # 0 or junk: not a count
    assert choice == threads.ThreadChoice(4, "auto: one per usable core")
    assert threads.choose_threads(0, env={"OMP_NUM_THREADS": "many"}).threads == 4
    assert threads.choose_threads(0, env={"LOCAL_WORLD_SIZE": "2"}).threads == 2  # a torchrun node's share
    assert threads.choose_threads(0, env={"LOCAL_WORLD_SIZE": "8"}).threads == 1
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 2.5)  # a container's quota, not the host's cores
    assert threads.choose_threads(0, env={}).threads == 2
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 0.5)
    assert threads.choose_threads(0, env={}).threads == 1


def test_passive_wait_is_a_default_not_an_override():
    env: dict[str, str] = {}
    threads.prefer_passive_wait(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    threads.prefer_passive_wait(env)
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_a_run_applies_and_logs_its_thread_count(synthetic, tmp_path):
    previous = torch.get_num_threads()
    try:
        result = run(RunRequest(method="base", data=synthetic, split=1, seed=0, profile="smoke", device="cpu",
                                out=tmp_path, progress=False, verify=False, epochs=1,
                                overrides={"num_threads": 1}))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)
    assert "1 CPU thread(s) (num_threads)" in (result.path / "log.txt").read_text()
    assert json.loads((result.path / "run.json").read_text())["device"] == "cpu (1 threads)"
