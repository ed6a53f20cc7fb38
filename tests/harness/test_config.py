"""Profiles, declared hyperparameters, --set typing, config resolution with sources, devices."""

from __future__ import annotations

import pytest
import torch

from osma_bench.errors import OsmaError
from osma_bench.harness.checkpoint import config_fingerprint
from osma_bench.harness.config import (
    PROFILES,
    RUNTIME_KEYS,
    check_profile,
    identity_differences,
    load_profile,
    parse_overrides,
    resolve,
    resolve_config,
)
from osma_bench.harness.device import select_device
from osma_bench.hparams import Kind
from osma_bench.methods.base_cnn import BaseMethod
from osma_bench.methods.pose import POSEMethod
from osma_bench.methods.registry import get_method


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_load(name):
    profile = load_profile(name)
    assert profile["image_size"] in (32, 128) and profile["epochs"] >= 1
    assert "optimizer" not in profile and "width" not in profile  # nothing nobody reads


def test_paper_profile_is_the_published_setting():
    paper = load_profile("paper")
    assert (paper["image_size"], paper["per_class"], paper["epochs"]) == (128, 8, 30)
    assert (paper["lr"], paper["lr_step"], paper["lr_gamma"]) == (1e-4, 500, 0.9)
    assert resolve_config(BaseMethod, "paper")["width"] == 64


def test_unknown_profile():
    with pytest.raises(OsmaError, match="unknown profile 'huge'.*smoke, mini, paper"):
        load_profile("huge")


def test_profile_files_are_validated_key_by_key():
    good = load_profile("mini")
    with pytest.raises(OsmaError, match="unknown key 'optimizer'"):
        check_profile({**good, "optimizer": "adam"}, "profile x")
    with pytest.raises(OsmaError, match=r"profile x lr: expected a float in \(0, 10\], got 'fast'"):
        check_profile({**good, "lr": "fast"}, "profile x")
    with pytest.raises(OsmaError, match="missing key"):
        check_profile({k: v for k, v in good.items() if k != "epochs"}, "profile x")


def test_overrides_stay_text_until_typed_by_their_declaration():
    assert parse_overrides(["lr=1e-3", "legacy=true"]) == {"lr": "1e-3", "legacy": "true"}
    with pytest.raises(OsmaError, match="key=value"):
        parse_overrides(["lr"])
    with pytest.raises(OsmaError, match="given twice"):
        parse_overrides(["lr=1", "lr=2"])
    config = resolve_config(POSEMethod, "mini", parse_overrides(["lr=3e-4", "legacy=yes", "w_div=0",
                                                                  "aug_lr_step=null"]))
    assert config["lr"] == 3e-4 and config["legacy"] is True and config["w_div"] == 0.0
    assert isinstance(config["w_div"], float) and config["aug_lr_step"] is None


@pytest.mark.parametrize(("method", "item", "message"), [
    ("base", "lr=abc", r"--set lr: expected a float in \(0, 10\], got 'abc'"),
    ("base", "lr=-1", r"--set lr: expected a float in \(0, 10\], got -1"),
    ("base", "width=-3", r"--set width: expected an int in \[1, 4096\], got -3"),
    ("base", "width=2.5", r"--set width: expected an int"),
    ("base", "legacy=maybe", r"--set legacy: expected a bool"),
    ("pose", "temperature=abc", r"--set temperature: expected a float > 0, got 'abc'"),
    ("base", "select_on=best", r"--set select_on: expected one of 'val_accuracy', 'last'"),
    ("dct_cnn", "channels=[3,8]", r"--set channels: expected an int list of 4 values"),
    ("dct_cnn", "channels=[3,8,x,2]", r"--set channels: expected an int list"),
    ("base", "optimizer=sgd", r"unknown key 'optimizer'"),
    ("base", "lrr=1", r"unknown key 'lrr' \(did you mean 'lr'\?\).*valid keys: .*lr_gamma"),
    ("dct_cnn", "lr_step=10", r"--set lr_step: method 'dct_cnn' does not use it \(its learning rate is constant"),
    ("openmax", "distance_grid=[eucos,manhattan]", r"--set distance_grid: expected a list of 'eucos'"),
])
def test_bad_set_values_are_one_clear_error(method, item, message):
    with pytest.raises(OsmaError, match=message):
        resolve(get_method(method), "smoke", parse_overrides([item]))


def test_resolution_order_and_sources():
    resolved = resolve(POSEMethod, "mini", {"w_div": "0.5", "num_threads": "1"}, epochs=2)
    v, s = resolved.values, resolved.sources
    assert v["epochs"] == 2 and s["epochs"] == "--epochs"
    assert v["w_div"] == 0.5 and s["w_div"] == "--set"
    assert v["image_size"] == 32 and s["image_size"] == "profile mini"
    assert v["aug_lr"] == 1e-2 and s["aug_lr"] == "method default"
    assert v["width"] == 32 and s["width"] == "method scaling (mini)"
    assert s["augmented_plot_images"] == "harness default"
    assert resolved.kinds["num_threads"] is Kind.RUNTIME and "num_threads" not in resolved.identity()
    assert resolved.kinds["lr"] is Kind.BUDGET and resolved.kinds["w_div"] is Kind.METHOD
    prov = resolved.provenance()
    assert prov["w_div"] == {"value": 0.5, "source": "--set", "kind": "method"}


def test_budget_departures_are_declared_and_recorded():
    resolved = resolve(get_method("proser"), "mini")
    assert resolved.values["select_on"] == "last" and resolved.values["epochs"] == 15
    assert resolved.sources["epochs"].startswith("budget departure: ")
    assert set(resolved.departures) == {"select_on", "epochs"}
    # Base departs from nothing.
    assert resolve(BaseMethod, "mini").departures == {}


def test_runtime_keys_are_not_part_of_identity_or_fingerprint():
    config = resolve_config(BaseMethod, "smoke")
    assert config["augmented_plot_images"] == 200
    with pytest.raises(OsmaError, match="augmented_plot_images: expected an int in"):
        resolve_config(BaseMethod, "smoke", {"augmented_plot_images": "-1"})
    for key in RUNTIME_KEYS:
        assert config_fingerprint(dict(config, **{key: 7})) == config_fingerprint(config)
    assert config_fingerprint(dict(config, lr=0.5)) != config_fingerprint(config)


def test_identity_differences_name_every_key():
    lines = identity_differences({"lr": 1e-3, "width": 8}, {"lr": 1e-4, "width": 8, "w_div": 0.0})
    assert lines == ["lr: 0.001 -> 0.0001", "w_div: '<absent>' -> 0.0"]


def test_cuda_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OsmaError, match="CUDA is not available"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"
    with pytest.raises(OsmaError, match="choose cpu"):
        select_device("tpu")
