"""amp=true in the harness: which methods and devices accept it, what a run records, and the
registry's source-tree fallback used by benchmarks/gpu_check.sh."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint

import pytest
import torch

from osma_bench.cli import main
from osma_bench.errors import OsmaError
from osma_bench.harness import precision
from osma_bench.harness.runner import RunRequest, run
from osma_bench.methods import registry
from osma_bench.methods.base_cnn import BaseMethod

CPU = torch.device("cpu")
AMP_METHODS = {"base", "pose", "openmax", "proser", "arpl_cs", "dias"}


def request(data, out, method="base", **overrides):
    return RunRequest(method=method, data=data, split=1, seed=0, profile="smoke", device="cpu", out=out,
                      progress=False, overrides={"num_threads": "1", **overrides})


def test_amp_support_is_declared_per_method():
    supported = {name for name in registry.available_methods() if precision.supports_amp(registry.get_method(name))}
    assert supported == AMP_METHODS


def test_amp_dtype_names():
    assert precision.amp_dtype("bfloat16") is torch.bfloat16 and precision.amp_dtype("float16") is torch.float16
    with pytest.raises(OsmaError, match="amp_dtype must be one of bfloat16, float16, got 'half'"):
        precision.amp_dtype("half")


@pytest.mark.parametrize("kernels", ["native", "emulated"])
def test_cpu_with_bf16_kernels_runs_amp(monkeypatch, kernels):
    monkeypatch.setattr(precision, "cpu_bf16_kernels", lambda: kernels)
    assert precision.check_amp_device({"amp": True, "amp_dtype": "bfloat16"}, CPU) is torch.bfloat16
    assert precision.check_amp_device({"amp": False, "amp_dtype": "bfloat16"}, CPU) is None
    with pytest.raises(OsmaError, match="amp_dtype=float16 is for CUDA"):
        precision.check_amp_device({"amp": True, "amp_dtype": "float16"}, CPU)


def test_cpu_without_bf16_kernels_refuses_amp(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_kernels", lambda: "none")
    with pytest.raises(OsmaError, match="no bfloat16 kernels.*train in float32"):
        precision.check_amp_device({"amp": True, "amp_dtype": "bfloat16"}, CPU)
    assert precision.check_amp_device({"amp": False}, CPU) is None


def test_this_cpu_is_described():
    info = precision.describe_cpu()
    assert info["name"] and info["bf16_kernels"] in ("native", "emulated", "none", "unknown")
    assert set(info["flags"]) <= set(precision.PRECISION_FLAGS)


def test_method_without_amp_refuses_with_one_error_line(synthetic, tmp_path, capsys):
    argv = ["run", "--method", "dct_cnn", "--data", str(synthetic), "--split", "1", "--profile", "smoke",
            "--device", "cpu", "--out", str(tmp_path), "--set", "amp=true"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: method 'dct_cnn' does not support amp=true (mixed precision): only methods trained "
                   "through the shared DCT classifier do (base, pose, openmax, proser, arpl_cs, dias); run it "
                   "without amp"]
    assert not any(tmp_path.iterdir())  # nothing written
    precision.check_amp_request(registry.get_method("dct_cnn"), {"amp": "false"})  # amp off: no objection


def test_run_refuses_amp_on_a_cpu_without_bf16_kernels(synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_kernels", lambda: "none")
    with pytest.raises(OsmaError, match="no bfloat16 kernels"):
        run(request(synthetic, tmp_path, amp="true"))
    assert not any(tmp_path.iterdir())


def test_amp_run_records_its_precision(synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_kernels", lambda: "emulated")  # as on an AVX-512 CPU
    result = run(request(synthetic, tmp_path, amp="true"))
    record = json.loads((result.path / "run.json").read_text())
    assert record["status"] == "complete" and record["config"]["amp"] is True
    assert record["precision"].startswith("bfloat16 autocast (cpu, bfloat16 kernels emulated)")
    assert "precision: bfloat16 autocast" in (result.path / "log.txt").read_text()
    assert 0.0 <= result.metrics["open_set"]["all"]["auroc"] <= 1.0


def test_float32_run_records_float32(synthetic, tmp_path):
    result = run(request(synthetic, tmp_path))
    assert json.loads((result.path / "run.json").read_text())["precision"] == "float32"


def test_registry_reads_built_in_methods_from_pyproject_when_not_installed(monkeypatch):
    monkeypatch.setattr(registry, "_installed", lambda: False)
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    names = registry.available_methods()
    assert {"base", "pose", "prnu", "girish"} <= set(names) and len(names) == 12
    assert registry.get_method("base") is BaseMethod
    info = {i.name: i for i in registry.describe_methods()}
    assert info["base"].package == "osma-bench (source tree)" and info["base"].error is None


def test_registry_source_tree_fallback_keeps_installed_plugins_and_reads_only_its_group(monkeypatch, tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project.entry-points."osma_bench.methods"]\nbase = "osma_bench.methods.base_cnn:BaseMethod"\n'
                         '[project.entry-points."other.group"]\nx = "a:b"\n')
    assert [(e.name, e.value) for e in registry.source_tree_entry_points(pyproject)] == [
        ("base", "osma_bench.methods.base_cnn:BaseMethod")]
    assert registry.source_tree_entry_points(tmp_path / "absent.toml") == []
    pyproject.write_text("not toml [")
    with pytest.raises(OsmaError, match="unreadable"):
        registry.source_tree_entry_points(pyproject)
    toy = EntryPoint("toy", "osma_bench_toy_plugin:ToyMethod", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_installed", lambda: False)
    monkeypatch.setattr(registry, "entry_points", lambda group: [toy])
    assert "toy" in registry.available_methods() and "pose" in registry.available_methods()


def test_sweep_preflight_names_methods_without_amp(tmp_path):
    from osma_bench.sweep.preflight import check_configs

    with pytest.raises(OsmaError) as caught:
        check_configs(["base", "dct_cnn", "prnu"], "smoke", ["amp=true"], None, 32, tmp_path)
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["dct_cnn", "prnu"]
    assert all("does not support amp=true" in line for line in lines[1:])
    check_configs(["base", "pose"], "smoke", ["amp=true"], None, 32, tmp_path)  # accepted
