"""Resolve a run's configuration: profile YAML + method defaults + per-profile scaling + ``--set``.

Order (later wins): the harness defaults (``HARNESS_DEFAULTS``), the profile file (shared budget: image size, batch, epochs, optimiser, ...),
the method's paper defaults, the method's ``profile_defaults[profile]``, ``--epochs``, then
``--set key=value`` overrides. Every key a run uses ends up in ``run.json`` under ``config``.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import yaml

from osma_bench.errors import OsmaError
from osma_bench.methods.api import Method

PROFILES = ("smoke", "mini", "paper")
_PROFILE_KEYS = ("image_size", "per_class", "epochs", "steps_per_epoch", "lr", "lr_step", "lr_gamma",
                 "eval_batch_size", "num_workers", "select_on")
SELECT_ON = ("val_accuracy", "last")
#: Harness settings every profile may override (``--set`` too).
HARNESS_DEFAULTS: dict[str, Any] = {
    "save_features": True,       # store the feature vectors in scores.h5 (t-SNE, clustering)
    "augmented_plot_images": 200,  # with save_features: features of a method's augmented samples of the
                                   # first N known test images go to scores.h5 too (t-SNE); 0: none
    "preload_limit_mb": 4096,    # partitions up to this size are read into memory once
    "num_threads": 0,            # CPU threads for torch (0: torch's default, one per core)
}
#: Keys that only change what is written after training: left out of the checkpoint fingerprint,
#: so a resume may change them (and checkpoints written before such a key existed still resume).
EVALUATION_ONLY_KEYS = frozenset({"augmented_plot_images"})
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def load_profile(name: str) -> dict[str, Any]:
    """The profile ``name`` from the package's ``harness/profiles/<name>.yaml``."""
    if name not in PROFILES:
        raise OsmaError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    text = resources.files("osma_bench.harness").joinpath("profiles", f"{name}.yaml").read_text()
    profile = yaml.safe_load(text)
    if not isinstance(profile, dict):
        raise OsmaError(f"profile {name}: not a mapping")
    missing = [k for k in _PROFILE_KEYS if k not in profile]
    if missing:
        raise OsmaError(f"profile {name}: missing key(s) {', '.join(missing)}")
    profile.pop("name", None)
    return profile


def parse_value(text: str) -> Any:
    """A ``--set`` value: int, float (``1e-3`` too), bool, null, a YAML list, or a string."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (bool, int, float, list, type(None))) else text


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lr=1e-3", "legacy=true"]`` -> ``{"lr": 0.001, "legacy": True}``."""
    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OsmaError(f"--set expects key=value, got {item!r}")
        overrides[key] = parse_value(value)
    return overrides


def resolve_config(
    method_cls: type[Method], profile: str, overrides: dict[str, Any] | None = None, epochs: int | None = None
) -> dict[str, Any]:
    """The resolved hyperparameters of one run (see the module docstring for the order)."""
    config = dict(HARNESS_DEFAULTS)
    config.update(load_profile(profile))
    method_part = method_cls.resolve_hparams(profile, {})
    config.update(method_part)
    if epochs is not None:
        if epochs < 1:
            raise OsmaError(f"--epochs must be at least 1, got {epochs}")
        config["epochs"] = int(epochs)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise OsmaError(
            f"--set: unknown key(s) {', '.join(unknown)} for method {method_cls.name!r} and profile "
            f"{profile!r}; known keys: {', '.join(sorted(config))}"
        )
    config.update(overrides)
    if not method_cls.trains:
        config["epochs"] = 1
    _check(config)
    return config


def _check(config: dict[str, Any]) -> None:
    for key in ("image_size", "per_class", "epochs", "eval_batch_size"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise OsmaError(f"config: {key} must be a positive integer, got {config[key]!r}")
    shown = config["augmented_plot_images"]
    if isinstance(shown, bool) or not isinstance(shown, int) or shown < 0:
        raise OsmaError(f"config: augmented_plot_images must be a non-negative integer, got {shown!r}")
    steps = config["steps_per_epoch"]
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise OsmaError(f"config: steps_per_epoch must be a positive integer or null, got {steps!r}")
    if config["select_on"] not in SELECT_ON:
        raise OsmaError(f"config: select_on must be one of {', '.join(SELECT_ON)}, got {config['select_on']!r}")
