"""Resolve a run's configuration from declared hyperparameters, recording where each value came from.

Layers, later wins (each value's source is recorded in ``run.json`` under ``hyperparameters``):

1. ``harness default``: the runtime settings' declared defaults (:data:`RUNTIME`);
2. ``profile <name>``: the shared budget (:data:`BUDGET`) and runtime keys of the profile file;
3. ``method default``: the method's declared defaults (its paper's values);
4. ``method scaling (<profile>)``: the method's ``profile_defaults[profile]`` (its own keys only);
5. ``budget departure``: a method's declared departure from the shared budget, with its reason;
6. ``--epochs``;
7. ``--set``: typed by the key's declaration (``--set lr=abc`` is an error, not a string).

Budget and method values make a run's identity; runtime values never do (they do not block
``--resume`` and do not separate runs in the report). See :mod:`osma_bench.hparams`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from osma_bench.errors import OsmaError
from osma_bench.hparams import Bool, Choice, Float, HParam, Int, Kind, did_you_mean
from osma_bench.methods.api import Method

PROFILES = ("smoke", "mini", "paper")
SELECT_ON = ("val_accuracy", "last")

#: The shared budget: every method trains under these (a departure is declared and recorded).
BUDGET: tuple[HParam, ...] = (
    Int("image_size", None, "side of the square training and test images, in pixels", kind=Kind.BUDGET, low=8,
        paper="128"),
    Int("per_class", None, "images of every known class per training step (batch = per_class x classes)",
        kind=Kind.BUDGET, low=1, paper="8 (15 classes: batch 120)"),
    Int("epochs", None, "training epochs", kind=Kind.BUDGET, low=1, paper="30"),
    Int("steps_per_epoch", None, "training steps per epoch (null: largest class size // per_class)",
        kind=Kind.BUDGET, low=1, nullable=True, paper="null (about 509 on OSMA)"),
    Float("lr", None, "learning rate of the main optimiser (Adam)", kind=Kind.BUDGET, low=0.0, low_open=True,
          high=10.0, paper="1e-4"),
    Int("lr_step", None, "StepLR period of the main optimiser, in iterations", kind=Kind.BUDGET, low=1,
        paper="500"),
    Float("lr_gamma", None, "StepLR factor of the main optimiser", kind=Kind.BUDGET, low=0.0, low_open=True,
          high=1.0, paper="0.9"),
    Choice("select_on", "val_accuracy", SELECT_ON, "model selection: best known-class validation accuracy, or "
           "the last epoch", kind=Kind.BUDGET, paper="the official code has none (last epoch)"),
)
#: Settings that never change a result: recorded, never part of a run's identity.
RUNTIME: tuple[HParam, ...] = (
    Int("eval_batch_size", 256, "images per batch in validation and test (no effect on the numbers)",
        kind=Kind.RUNTIME, low=1),
    Int("num_workers", 0, "data-loading worker processes", kind=Kind.RUNTIME, low=0, high=256),
    Float("preload_limit_mb", 4096, "partitions up to this size (MiB) are read into memory once",
          kind=Kind.RUNTIME, low=0.0),
    Int("num_threads", 0, "CPU threads for torch (0: auto, one per usable core; see harness/threads.py)",
        kind=Kind.RUNTIME, low=0,
        high=1024),
    Bool("save_features", True, "store feature vectors in scores.h5 (t-SNE, clustering)", kind=Kind.RUNTIME),
    Int("augmented_plot_images", 200, "with save_features: features of a method's augmented samples of the "
        "first N known test images go to scores.h5 too (0: none)", kind=Kind.RUNTIME, low=0, high=1_000_000),
)
HARNESS_PARAMS: dict[str, HParam] = {p.name: p for p in (*BUDGET, *RUNTIME)}
#: Keys a profile file must set.
_PROFILE_KEYS = tuple(p.name for p in BUDGET) + ("eval_batch_size", "num_workers")
#: Keys that may differ between a run and its resume (never part of a run's identity).
RUNTIME_KEYS = frozenset(p.name for p in RUNTIME)


def load_profile(name: str) -> dict[str, Any]:
    """The built-in profile ``name``, validated against the budget and runtime declarations."""
    if name not in PROFILES:
        raise OsmaError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    text = resources.files("osma_bench.harness").joinpath("profiles", f"{name}.yaml").read_text()
    return check_profile(yaml.safe_load(text), f"profile {name}")


def check_profile(profile: Any, where: str) -> dict[str, Any]:
    """A profile mapping checked key by key (unknown keys and missing budget keys are errors)."""
    if not isinstance(profile, dict):
        raise OsmaError(f"{where}: not a mapping")
    profile = dict(profile)
    profile.pop("name", None)
    missing = [k for k in _PROFILE_KEYS if k not in profile]
    if missing:
        raise OsmaError(f"{where}: missing key(s) {', '.join(missing)}")
    checked = {}
    for key, value in profile.items():
        if key not in HARNESS_PARAMS:
            raise OsmaError(f"{where}: unknown key {key!r}{did_you_mean(str(key), HARNESS_PARAMS)}; a profile sets "
                            f"the shared budget ({', '.join(p.name for p in BUDGET)}) and runtime settings "
                            f"({', '.join(sorted(RUNTIME_KEYS))})")
        checked[key] = HARNESS_PARAMS[key].validate(value, where)
    return checked


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """``["lr=1e-3", "legacy=true"]`` -> ``{"lr": "1e-3", "legacy": "true"}``: values stay text until
    :func:`resolve` types them by their declaration."""
    from osma_bench.hparams import split_assignments

    return split_assignments(items)


@dataclass
class Resolved:
    """A run's resolved settings: values, where each came from, and each one's kind."""

    values: dict[str, Any]
    sources: dict[str, str]
    kinds: dict[str, Kind]
    departures: dict[str, str] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """The values that make the run what it is (budget and method keys; no runtime keys)."""
        return {k: v for k, v in self.values.items() if self.kinds[k] is not Kind.RUNTIME}

    def provenance(self) -> dict[str, dict[str, Any]]:
        """``{key: {"value", "source", "kind"}}`` for run.json, sorted by kind then name."""
        order = {Kind.BUDGET: 0, Kind.METHOD: 1, Kind.RUNTIME: 2}
        keys = sorted(self.values, key=lambda k: (order[self.kinds[k]], k))
        return {k: {"value": self.values[k], "source": self.sources[k], "kind": self.kinds[k].value} for k in keys}


def resolve(method_cls: type[Method], profile: str, overrides: dict[str, Any] | None = None,
            epochs: int | None = None, profile_values: dict[str, Any] | None = None) -> Resolved:
    """The resolved, validated settings of one run (see the module docstring for the layers).

    ``profile_values`` replaces the built-in profile's file (a user's ``--profile FILE.yaml``,
    already checked with :func:`check_profile`); ``profile`` then names it.
    """
    method_params = method_cls.declared_hparams()
    clash = sorted(set(method_params) & set(HARNESS_PARAMS))
    if clash:
        raise OsmaError(f"method {method_cls.name!r} declares harness key(s) {', '.join(clash)}; a method "
                        "departs from the shared budget through budget_departures")
    declared = {**HARNESS_PARAMS, **method_params}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for p in RUNTIME:
        values[p.name], sources[p.name] = p.default, "harness default"
    file_method_values: dict[str, Any] = {}
    if profile_values is not None:  # a user's profile file: harness keys checked here, method keys below
        harness_part = {k: v for k, v in profile_values.items() if k in HARNESS_PARAMS}
        file_method_values = {k: v for k, v in profile_values.items() if k not in HARNESS_PARAMS}
        chosen = check_profile(harness_part, f"profile file {profile}")
    else:
        chosen = load_profile(profile)
    for key, value in chosen.items():
        values[key], sources[key] = value, f"profile {profile}"
    where = f"method {method_cls.name}"
    for p in method_params.values():
        values[p.name], sources[p.name] = p.validate(p.default, f"{where} default"), "method default"
    for key, value in file_method_values.items():  # keys other methods declare are not this one's
        if key in method_params:
            values[key] = method_params[key].validate(value, f"profile file {profile}")
            sources[key] = f"profile {profile}"
    for key, value in method_cls.profile_defaults.get(profile, {}).items():
        if key not in method_params:
            raise OsmaError(f"{where}: profile_defaults[{profile!r}] sets {key!r}, which is not one of its "
                            "declared hyperparameters (a budget key departs through budget_departures)")
        values[key] = method_params[key].validate(value, f"{where} scaling ({profile})")
        sources[key] = f"method scaling ({profile})"
    departures = {}
    for key, departure in method_cls.departures_for(profile).items():
        if key not in HARNESS_PARAMS or HARNESS_PARAMS[key].kind is not Kind.BUDGET:
            raise OsmaError(f"{where}: budget departure {key!r} is not a budget key")
        values[key] = HARNESS_PARAMS[key].validate(departure.value, f"{where} budget departure")
        sources[key] = f"budget departure: {departure.why}"
        departures[key] = departure.why
    if epochs is not None:
        values["epochs"], sources["epochs"] = HARNESS_PARAMS["epochs"].validate(epochs, "--epochs"), "--epochs"
    for key, value in (overrides or {}).items():
        if key not in declared:
            raise OsmaError(
                f"--set: unknown key {key!r}{did_you_mean(key, declared)} for method {method_cls.name!r}; valid "
                f"keys: {', '.join(sorted(declared))} (osma-bench methods --hparams {method_cls.name} describes them)")
        if key in method_cls.unused_budget:
            raise OsmaError(f"--set {key}: method {method_cls.name!r} does not use it "
                            f"({method_cls.unused_budget[key]})")
        p = declared[key]
        values[key] = p.parse(value, "--set") if isinstance(value, str) and p.type.value != "str" else \
            p.validate(value, "--set")
        sources[key] = "--set"
    if not method_cls.trains and values["epochs"] != 1:
        values["epochs"], sources["epochs"] = 1, "the method does not train (one pass)"
    kinds = {k: declared[k].kind for k in values}
    return Resolved(values, sources, kinds, departures)


def resolve_config(method_cls: type[Method], profile: str, overrides: dict[str, Any] | None = None,
                   epochs: int | None = None) -> dict[str, Any]:
    """The resolved values of one run (:func:`resolve` without the provenance)."""
    return resolve(method_cls, profile, overrides, epochs).values


def identity_fingerprint(identity: dict[str, Any]) -> str:
    """A short hash of a run's identity values (the same settings give the same fingerprint)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def identity_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every identity key that differs (missing on one side included)."""
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if a != b:
            lines.append(f"{key}: {a!r} -> {b!r}")
    return lines
