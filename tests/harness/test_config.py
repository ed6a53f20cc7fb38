"""Profiles, --set parsing, config resolution and device selection."""

from __future__ import annotations

import pytest
import torch

from osma_bench.errors import OsmaError
from osma_bench.harness.config import PROFILES, load_profile, parse_overrides, parse_value, resolve_config
from osma_bench.harness.device import select_device
from osma_bench.methods.base_cnn import BaseMethod
from osma_bench.methods.pose import POSEMethod


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_load(name):
    profile = load_profile(name)
    assert profile["image_size"] in (32, 128) and profile["epochs"] >= 1


def test_paper_profile_is_the_published_setting():
    paper = load_profile("paper")
    assert (paper["image_size"], paper["per_class"], paper["epochs"]) == (128, 8, 30)
    assert (paper["lr"], paper["lr_step"], paper["lr_gamma"], paper["width"]) == (1e-4, 500, 0.9, 64)


def test_unknown_profile():
    with pytest.raises(OsmaError, match="unknown profile 'huge'.*smoke, mini, paper"):
        load_profile("huge")


@pytest.mark.parametrize(("text", "value"), [
    ("3", 3), ("1e-3", 1e-3), ("0.5", 0.5), ("true", True), ("False", False), ("null", None),
    ("[1, 2]", [1, 2]), ("last", "last"), ("-2", -2),
])
def test_parse_value(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_parse_overrides_and_errors():
    assert parse_overrides(["lr=1e-3", "legacy=true"]) == {"lr": 1e-3, "legacy": True}
    with pytest.raises(OsmaError, match="key=value"):
        parse_overrides(["lr"])


def test_resolution_order():
    config = resolve_config(POSEMethod, "mini", {"w_div": 0.5}, epochs=2)
    assert config["epochs"] == 2 and config["w_div"] == 0.5
    assert config["image_size"] == 32 and config["aug_lr"] == 1e-2 and config["temperature"] == 0.1
    assert resolve_config(BaseMethod, "paper")["lr"] == 1e-4


def test_unknown_override_key_lists_known_keys():
    with pytest.raises(OsmaError, match="unknown key.*lrr.*known keys:.*lr"):
        resolve_config(BaseMethod, "smoke", {"lrr": 1})


def test_cuda_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OsmaError, match="CUDA is not available"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"
    with pytest.raises(OsmaError, match="choose cpu"):
        select_device("tpu")


def test_augmented_plot_images_is_checked_and_not_fingerprinted():
    from osma_bench.harness.checkpoint import config_fingerprint

    config = resolve_config(BaseMethod, "smoke")
    assert config["augmented_plot_images"] == 200
    with pytest.raises(OsmaError, match="augmented_plot_images must be a non-negative integer"):
        resolve_config(BaseMethod, "smoke", {"augmented_plot_images": -1})
    # An evaluation-only key: a resume may change it, and older checkpoints (without it) still match.
    older = {k: v for k, v in config.items() if k != "augmented_plot_images"}
    assert config_fingerprint(dict(config, augmented_plot_images=5)) == config_fingerprint(older)
    assert config_fingerprint(dict(config, lr=0.5)) != config_fingerprint(config)
