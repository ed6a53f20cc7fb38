"""The sweep grid: which (method, split, seed) runs a sweep covers, and where each one's files go.

``--methods all`` means every registered method (entry-point group ``osma_bench.methods``);
``--splits all`` means every split in the dataset card. Lists are comma-separated and may hold
ranges (``0-4``); duplicates are dropped, order is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from osma_bench.errors import OsmaError
from osma_bench.results import method_folder, run_path

_RANGE = re.compile(r"^(-?\d+)\s*-\s*(-?\d+)$")


@dataclass(frozen=True)
class GridPoint:
    """One run of the grid and the paths it owns."""

    method: str
    split: int
    seed: int
    run_dir: Path
    log: Path

    @property
    def label(self) -> str:
        """Short human name, e.g. ``pose split1 seed0``."""
        return f"{self.method} split{self.split} seed{self.seed}"


def _unique(items: list) -> list:
    seen: set = set()
    return [x for x in items if not (x in seen or seen.add(x))]


def parse_int_list(text: str, what: str) -> list[int]:
    """``"0,1,2"`` or ``"0-2"`` (or a mix) -> ``[0, 1, 2]``; OsmaError naming ``what`` otherwise."""
    values: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        if re.fullmatch(r"-?\d+", part):
            values.append(int(part))
            continue
        m = _RANGE.match(part)
        if not m or int(m.group(1)) > int(m.group(2)):
            raise OsmaError(f"--{what}: {part!r} is not an integer or a range like 0-4")
        values.extend(range(int(m.group(1)), int(m.group(2)) + 1))
    if not values:
        raise OsmaError(f"--{what}: no value given")
    return _unique(values)


def parse_methods(text: str, available: list[str]) -> list[str]:
    """``"all"`` -> every available method; ``"a,b"`` -> those, each checked against ``available``."""
    if str(text).strip().lower() == "all":
        if not available:
            raise OsmaError("--methods all: no method is registered (entry-point group osma_bench.methods)")
        return sorted(available)
    names = _unique([n.strip() for n in str(text).split(",") if n.strip()])
    if not names:
        raise OsmaError("--methods: no method given (a comma-separated list, or all)")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise OsmaError(f"--methods: unknown method(s) {', '.join(unknown)}; known methods: "
                        f"{', '.join(sorted(available)) or '(none)'}")
    return names


def parse_splits(text: str, card_splits: list[int], dataset: Path) -> list[int]:
    """``"all"`` -> the card's splits; a list -> those, each checked against the card."""
    if not card_splits:
        raise OsmaError(f"{dataset}: the dataset card lists no splits")
    if str(text).strip().lower() == "all":
        return sorted(card_splits)
    splits = parse_int_list(text, "splits")
    missing = [k for k in splits if k not in card_splits]
    if missing:
        raise OsmaError(f"--splits: split(s) {', '.join(map(str, missing))} not in {dataset} (it has "
                        f"{', '.join(map(str, sorted(card_splits)))})")
    return splits


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` / ``"0-2"`` -> non-negative seeds."""
    seeds = parse_int_list(text, "seeds")
    negative = [s for s in seeds if s < 0]
    if negative:
        raise OsmaError(f"--seeds: seeds must be non-negative, got {', '.join(map(str, negative))}")
    return seeds


def card_splits(card: dict) -> list[int]:
    """The split numbers a dataset card declares (its ``splits`` keys are ``"1"``, ``"2"``, ...)."""
    try:
        return sorted(int(k) for k in card.get("splits", {}))
    except (TypeError, ValueError):
        raise OsmaError(f"dataset card {card.get('name')!r}: split names must be integers") from None


def expand_grid(dataset: str, methods: list[str], splits: list[int], seeds: list[int], out: Path,
                logs: Path, variant: str | None = None) -> list[GridPoint]:
    """Every (method, split, seed), seed-major so that an early stop still covers every method.

    Run directories follow docs/CONTRACTS.md section 4; the sweep's captured output of each run
    goes to ``logs/<dataset>.<method>.split<k>.seed<s>.log`` (flat, so it never looks like a run).
    """
    points = []
    for seed in seeds:
        for split in splits:
            for method in methods:
                run_dir = run_path(out, dataset, method, split, seed, variant)
                log = Path(logs) / f"{dataset}.{method_folder(method, variant)}.split{split}.seed{seed}.log"
                points.append(GridPoint(method, split, seed, run_dir, log))
    return points
