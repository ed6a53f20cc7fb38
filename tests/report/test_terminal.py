"""The report on an 80-column terminal: tables split to fit, no number ever ellipsised."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from osma_bench.report import build_report, to_markdown
from osma_bench.report.terminal import print_report_fitted, split_columns
from tests.report.conftest import fake_metrics, write_run

NUMBER = re.compile(r"\d+\.\d+")


def _render(report, width, ci=False, full=None):
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=False, color_system=None)
    print_report_fitted(report, console, ci=ci, full=full)
    return buf.getvalue()


def _table1_numbers(markdown: str) -> list[str]:
    """Every number of the Markdown Table 1 rows (the rows after a "| Method | n |" header)."""
    numbers, inside = [], False
    for line in markdown.splitlines():
        if line.startswith("| Method | n |"):
            inside = True
        elif inside and line.startswith("| "):
            numbers += NUMBER.findall(line)
        elif inside and not line.startswith("|"):
            inside = False
    return numbers


@pytest.fixture
def wide_report(tmp_path):
    """Three methods with a long plugin name, values with std, so Table 1 is ~160 characters wide."""
    root = tmp_path / "results"
    for seed, d in ((0, 0.0), (1, 0.013)):
        write_run(root, "base", 1, seed, metrics=fake_metrics(0.9012 + d, 0.7033 + d, 0.6544 + d))
        write_run(root, "pose", 1, seed, metrics=fake_metrics(0.9301 - d, 0.8188 + d, 0.7712 + d))
        write_run(root, "a_very_long_plugin_method_name", 1, seed,
                  metrics=fake_metrics(0.1111 + d, 0.2222 + d, 0.3333 + d))
    return build_report(root)


@pytest.mark.parametrize("ci", [False, True])
def test_80_columns_split_never_cut_numbers(wide_report, tmp_path, ci):
    full = tmp_path / "REPORT.md"
    text = _render(wide_report, 80, ci=ci, full=full)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text and "..." not in text
    numbers = _table1_numbers(to_markdown(wide_report, ci=ci))
    assert len(numbers) >= 3 * 9 * 2  # mean and std (or interval) of every cell
    shown = NUMBER.findall(text)
    for number in set(numbers):  # every number of the Markdown table, whole, as often as there
        assert shown.count(number) >= numbers.count(number), number
    assert "(1/" in text and f"the whole table is in {full}" in " ".join(text.split())
    first_column = "".join(line[:21].strip() for line in lines)  # a long name folds, never cut
    assert "a_very_long_plugin_method_name" in first_column


def test_wide_terminal_keeps_one_table(wide_report):
    text = _render(wide_report, 250)
    assert "(1/" not in text and "whole table" not in text
    assert max(len(line) for line in text.splitlines()) <= 250


def test_very_narrow_terminal_lists_values(wide_report):
    text = _render(wide_report, 24)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 24
    assert "Unseen All OSCR" in text
    numbers = _table1_numbers(to_markdown(wide_report))
    shown = NUMBER.findall(text)
    assert all(shown.count(n) >= numbers.count(n) for n in numbers)


def test_split_columns_as_few_and_even_tables_as_fit():
    assert split_columns([6, 1], [12, 12, 12, 12], 60) == [[0, 1], [2, 3]]
    assert split_columns([6, 1], [12] * 11, 80) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    assert split_columns([6, 1], [12, 12, 12, 30], 57) == [[0, 1, 2], [3]]  # even shares would not fit
    assert split_columns([6, 1], [12, 25], 40) == [[0], [1]]
    assert split_columns([6, 1], [12, 40], 40) is None
