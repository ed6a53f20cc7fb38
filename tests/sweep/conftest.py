"""Helpers for the sweep tests: a grid whose runs are done by ``fake_run.py`` instead of the harness."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from osma_bench.sweep.command import RunSettings
from osma_bench.sweep.grid import expand_grid
from osma_bench.sweep.plan import Sweep

FAKE_RUN = Path(__file__).with_name("fake_run.py")


class FakeGrid:
    """A sweep over made-up methods; ``modes[(method, split, seed)]`` picks what each fake run does."""

    def __init__(self, root: Path, methods=("a", "b"), splits=(1, 2), seeds=(0,), sleep_s: float = 0.0):
        self.out, self.logs, self.ledger = root / "results", root / "results" / ".sweep", root / "ledger.jsonl"
        self.points = expand_grid("toyset", list(methods), list(splits), list(seeds), self.out, self.logs)
        self.modes: dict[tuple[str, int, int], str] = {}
        self.sleep_s = sleep_s

    def command(self, point) -> list[str]:
        mode = self.modes.get((point.method, point.split, point.seed), "ok")
        return [sys.executable, str(FAKE_RUN), str(point.run_dir), mode, str(self.ledger), str(self.sleep_s)]

    def sweep(self) -> Sweep:
        settings = RunSettings(data=Path("unused"), profile="smoke", out=self.out)
        return Sweep("toyset", self.points, settings, self.logs, {"dataset": "toyset"}, command=self.command)

    def entries(self) -> list[dict]:
        if not self.ledger.is_file():
            return []
        return [json.loads(line) for line in self.ledger.read_text().splitlines()]

    def ran(self) -> set[str]:
        """Run folders the fake runner was started on, relative to the results root."""
        return {str(Path(e["run_dir"]).relative_to(self.out)) for e in self.entries()}

    def make_complete(self, method: str, split: int, seed: int) -> Path:
        path = self.out / "toyset" / method / f"split{split}" / f"seed{seed}"
        path.mkdir(parents=True, exist_ok=True)
        (path / "run.json").write_text(json.dumps({"status": "complete", "profile": "smoke"}))
        (path / "metrics.json").write_text("{}")
        return path


@pytest.fixture
def fake_grid(tmp_path):
    return FakeGrid(tmp_path)
