"""LEADERBOARD.md is exactly what `osma-bench report` writes from the committed results/."""

from pathlib import Path

import pytest

from osma_bench.report import build_report, to_markdown

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (REPO / "LEADERBOARD.md").is_file(), reason="no LEADERBOARD.md committed yet")
def test_leaderboard_is_what_report_writes_from_committed_results():
    report = build_report(REPO / "results")
    assert to_markdown(report) == (REPO / "LEADERBOARD.md").read_text()
