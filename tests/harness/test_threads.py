"""The CPU thread policy: free cores from /proc/stat samples, cgroup quota, OMP_NUM_THREADS, passive wait."""

from __future__ import annotations

import json

import pytest
import torch

from osma_bench.harness import threads
from osma_bench.harness.runner import RunRequest, run


@pytest.mark.parametrize(("cores", "busy", "share", "expected"), [
    (2, 0.0, 1, 2), (2, 0.4, 1, 2), (2, 0.6, 1, 1), (2, 1.0, 1, 1), (2, 2.0, 1, 1), (2, None, 1, 2),
    (16, 4.2, 1, 12), (16, 0.0, 4, 4), (4, 3.9, 2, 1), (1, 0.0, 1, 1),
])
def test_one_thread_per_free_core(cores, busy, share, expected):
    assert threads.free_core_threads(cores, busy, share) == expected


def test_busy_cores_from_two_samples_of_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 5 0 5 40 0 0 0 0 0 0\n"
                    "intr 1 2 3\n")
    before = threads.read_cpu_times(str(stat))
    assert before == {0: (10, 50), 1: (10, 50)}
    # cpu0 fully busy for 100 jiffies, cpu1 a quarter busy (iowait counts as idle)
    stat.write_text("cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 105 0 5 40 0 0 0 0 0 0\ncpu1 20 0 15 100 15 0 0 0 0 0\n")
    after = threads.read_cpu_times(str(stat))
    assert threads.busy_cores(before, after, [0, 1]) == pytest.approx(1.25)
    assert threads.busy_cores(before, after, [1]) == pytest.approx(0.25)
    assert threads.busy_cores(before, after, [7]) == 0.0  # a CPU the samples do not know
    assert threads.read_cpu_times(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(("text", "expected"), [("max 100000\n", None), ("150000 100000\n", 1.5),
                                                ("200000 50000", 4.0), ("garbage", None)])
def test_cgroup_quota_in_cores(tmp_path, text, expected):
    path = tmp_path / "cpu.max"
    path.write_text(text)
    assert threads.cgroup_cpu_limit(str(path)) == expected
    assert threads.cgroup_cpu_limit(str(tmp_path / "absent")) is None


def test_choice_order_num_threads_then_environment_then_free_cores(monkeypatch):
    assert threads.choose_threads(3, env={"OMP_NUM_THREADS": "2"}) == threads.ThreadChoice(3, "num_threads")
    assert threads.choose_threads(0, env={"OMP_NUM_THREADS": "2"}) == threads.ThreadChoice(2, "OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "usable_cpus", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    monkeypatch.setattr(threads, "sample_busy_cores", lambda cpus, seconds: 2.8)
    choice = threads.choose_threads(0, env={"OMP_NUM_THREADS": "0"})  # 0 or junk: not a count
    assert choice.threads == 1 and choice.reason == "auto: 4 usable core(s), 2.8 busy"
    monkeypatch.setattr(threads, "sample_busy_cores", lambda cpus, seconds: 0.1)
    assert threads.choose_threads(0, env={}).threads == 4
    assert threads.choose_threads(0, env={"LOCAL_WORLD_SIZE": "2"}).threads == 2
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 1.5)
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
