"""The results folder's layout: where a run lives, what its variant is called, when it is complete.

``<out>/<dataset>/<method>[+<variant>]/split<k>/seed<s>/`` holds one run (docs/CONTRACTS.md,
section 4). A *variant* is a named change of a method's settings (``--variant NAME --set ...``),
e.g. POSE without its diversity loss (``pose+no_div``): it lives in its own folder and is its own row
in the report. Everything that finds, names or reads run folders goes through this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from osma_bench.errors import OsmaError

#: ``status`` of a run whose metrics.json is final.
COMPLETE = "complete"
VARIANT_SEPARATOR = "+"
_VARIANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,=-]{0,63}$")
_SPLIT = re.compile(r"^split(\d+)$")
_SEED = re.compile(r"^seed(\d+)$")


def check_variant(name: str | None) -> str | None:
    """``name`` when it is a valid variant name (letters, digits, ``_ . , = -``; at most 64)."""
    if name is None or name == "":
        return None
    if not _VARIANT.match(name):
        raise OsmaError(f"--variant {name!r}: use 1-64 letters, digits and _ . , = - (starting with a letter or "
                        "digit)")
    return name


def variant_from_settings(settings: Mapping[str, Any]) -> str:
    """The automatic variant name of ``--variant auto``: ``key=value`` of each setting, sorted."""
    def show(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, list):
            return "-".join(show(v) for v in value)
        return "null" if value is None else str(value)

    if not settings:
        raise OsmaError("--variant auto needs at least one --set that changes the result (a non-runtime key)")
    name = ",".join(f"{k}={show(v)}" for k, v in sorted(settings.items()))
    name = re.sub(r"[^A-Za-z0-9_.,=-]", "_", name)[:64]
    return check_variant(name) or ""


def method_folder(method: str, variant: str | None = None) -> str:
    """``pose`` or ``pose+no_div``."""
    return f"{method}{VARIANT_SEPARATOR}{variant}" if variant else method


def split_method_folder(name: str) -> tuple[str, str | None]:
    """``"pose+no_div"`` -> ``("pose", "no_div")``; ``"pose"`` -> ``("pose", None)``."""
    method, sep, variant = name.partition(VARIANT_SEPARATOR)
    return method, (variant if sep else None)


def run_label(method: str, variant: str | None) -> str:
    """How the report names a row: ``pose`` or ``pose [no_div]``."""
    return f"{method} [{variant}]" if variant else method


def run_path(out: Path, dataset: str, method: str, split: int, seed: int, variant: str | None = None) -> Path:
    """Where one run's files go."""
    return Path(out) / dataset / method_folder(method, variant) / f"split{split}" / f"seed{seed}"


def run_folders(root: Path) -> Iterator[tuple[Path, str, str, str | None, int, int]]:
    """Every run folder under ``root``: ``(path, dataset, method, variant, split, seed)``, sorted."""
    for seed_dir in sorted(Path(root).glob("*/*/split*/seed*")):
        split_m, seed_m = _SPLIT.match(seed_dir.parent.name), _SEED.match(seed_dir.name)
        if not seed_dir.is_dir() or not split_m or not seed_m:
            continue
        method, variant = split_method_folder(seed_dir.parent.parent.name)
        yield (seed_dir, seed_dir.parent.parent.parent.name, method, variant, int(split_m.group(1)),
               int(seed_m.group(1)))


def read_run_record(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of ``run_dir`` as a dict; ``{}`` when absent, unreadable or not an object."""
    import json

    try:
        record = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def is_complete(run_dir: Path, record: dict[str, Any] | None = None) -> bool:
    """A run is complete when run.json says so and metrics.json exists (anything less is resumed
    or redone; an interrupted run never looks complete)."""
    record = read_run_record(run_dir) if record is None else record
    return record.get("status") == COMPLETE and (Path(run_dir) / "metrics.json").is_file()


def require_complete(run_dir: Path, need_metrics: bool = True) -> dict[str, Any]:
    """``run.json`` of a complete run made by ``osma-bench run``; one OsmaError line otherwise
    (``need_metrics=False``: metrics.json may be absent, e.g. for clustering a run's scores)."""
    from osma_bench.io import read_json

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise OsmaError(f"{run_dir}: run directory not found")
    record = read_json(run_dir / "run.json")
    if not isinstance(record, dict):
        raise OsmaError(f"{run_dir / 'run.json'}: expected a JSON object")
    if record.get("status") != COMPLETE:
        raise OsmaError(f"{run_dir}: run status is {record.get('status')!r}, not {COMPLETE!r}; finish the run first")
    if need_metrics and not (run_dir / "metrics.json").is_file():
        raise OsmaError(f"{run_dir}: metrics.json is missing; the run did not finish its evaluation")
    return record
