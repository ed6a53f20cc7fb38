"""The search grid: ``--grid key=v1,v2`` options checked against the method's declarations."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

from osma_bench.errors import OsmaError
from osma_bench.hparams import Kind, did_you_mean
from osma_bench.methods.api import Method

#: Separator of a list-valued key's alternatives (a list value itself is comma-separated).
LIST_ALTERNATIVES = ";"


def parse_grid(items: list[str] | None, method_cls: type[Method]) -> list[tuple[str, list[str]]]:
    """``["lr=1e-3,3e-3", "sigma_grid=0.05,0.5;5"]`` -> ``[("lr", ["1e-3", "3e-3"]), ...]``.

    Values stay text (typed later by each key's declaration). A scalar key's alternatives are
    comma-separated; a list-valued key's alternatives are separated by ``;`` (each one a
    comma-separated list). Runtime keys are refused: they never change a result.
    """
    from osma_bench.harness.config import HARNESS_PARAMS

    declared = {**HARNESS_PARAMS, **method_cls.declared_hparams()}
    grid: list[tuple[str, list[str]]] = []
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise OsmaError(f"--grid expects key=value1,value2,..., got {item!r}")
        if key not in declared:
            raise OsmaError(f"--grid: unknown key {key!r}{did_you_mean(key, declared)} for method "
                            f"{method_cls.name!r} (osma-bench methods --hparams {method_cls.name} lists them)")
        if declared[key].kind is Kind.RUNTIME:
            raise OsmaError(f"--grid {key}: a runtime setting never changes a result; tune budget or method keys")
        if key in method_cls.unused_budget:
            raise OsmaError(f"--grid {key}: method {method_cls.name!r} does not use it "
                            f"({method_cls.unused_budget[key]})")
        if any(k == key for k, _ in grid):
            raise OsmaError(f"--grid {key} given twice")
        is_list = declared[key].type.value.endswith("list")
        values = [v.strip() for v in text.split(LIST_ALTERNATIVES if is_list else ",")]
        if any(not v for v in values):
            raise OsmaError(f"--grid {key}: empty value in {text!r}")
        if len(set(values)) != len(values):
            raise OsmaError(f"--grid {key}: a value is listed twice in {text!r}")
        grid.append((key, values))
    if not grid:
        raise OsmaError("tune needs at least one --grid key=value1,value2")
    return grid


def grid_points(grid: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every combination, in grid order (the first key varies slowest)."""
    keys = [k for k, _ in grid]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in grid))]


def point_variant(settings: dict[str, Any]) -> str:
    """The run-folder variant of a grid point: ``tune-`` and a hash of its typed settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return "tune-" + hashlib.sha256(text.encode()).hexdigest()[:12]
