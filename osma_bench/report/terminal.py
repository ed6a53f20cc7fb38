"""The report on a terminal (or in a log), fitted to its width: a number is never cut.

Table 1 has eleven columns of ``mean ± std`` cells, about 160 characters wide; a terminal of 80
columns would make rich ellipsise them (``93.…``). Here every number column gets the width of
its widest cell and never wraps; the columns are split into as many tables as needed, each
repeating the method and ``n`` columns, and headers break between words. Below even one metric
column's width, each method's values are listed one per line. Method names and problem texts
fold onto further lines instead of being cut. The caller points to the full Markdown file.
"""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from osma_bench.report.tables import TABLE1_COLUMNS, Report, Section
from osma_bench.report.writers import column_marks, fmt_cell, row_name

BOX = box.SIMPLE_HEAD  # rules under the header only: 1 character between columns, none at the edges
PADDING = 1  # characters each side of a cell


def _styled(text: str, mark: str) -> str:
    return f"[bold]{text}[/bold]" if mark == "best" else f"[underline]{text}[/underline]" if mark == "second" else text


def _header(title: str) -> str:
    """A column title broken between words (it never decides a number column's width)."""
    return "\n".join(title.split())


def _table_width(widths: list[int]) -> int:
    """Characters a rich table with ``BOX`` and ``PADDING`` takes for columns of these content widths."""
    return sum(w + 2 * PADDING for w in widths) + max(0, len(widths) - 1)


def split_columns(fixed: list[int], widths: list[int], total: int) -> list[list[int]] | None:
    """Indices of ``widths`` in consecutive groups that fit ``total`` characters next to the ``fixed``
    columns; None when not even one column fits."""
    groups: list[list[int]] = []
    for i, width in enumerate(widths):
        if _table_width(fixed + [width]) > total:
            return None
        if groups and _table_width(fixed + [widths[j] for j in groups[-1]] + [width]) <= total:
            groups[-1].append(i)
        else:
            groups.append([i])
    # as many tables as the greedy packing needs, with as even a share of columns as fits
    count, start, even = len(groups), 0, []
    for k in range(count):
        size = -(-(len(widths) - start) // (count - k))
        even.append(list(range(start, start + size)))
        start += size
    fits = all(_table_width(fixed + [widths[j] for j in group]) <= total for group in even)
    return even if fits else groups


def _section_cells(section: Section, ci: bool) -> tuple[list[str], list[list[str]], list[list[str]]]:
    marks = column_marks(section)
    titles = [title for *_, title in TABLE1_COLUMNS]
    plain = [[fmt_cell(r.cells.get(key), ci) for key, *_ in TABLE1_COLUMNS] for r in section.rows]
    styled = [[_styled(text, marks[key][r.label]) for text, (key, *_) in zip(row, TABLE1_COLUMNS, strict=True)]
              for r, row in zip(section.rows, plain, strict=True)]
    return titles, plain, styled


def _print_section(section: Section, console: Console, ci: bool, width: int) -> bool:
    """Print one section's Table 1 within ``width``; True when it had to be split or listed."""
    titles, plain, styled = _section_cells(section, ci)
    methods = [row_name(r) + (" (not converged)" if r.not_converged else "") for r in section.rows]
    method_w = max([len("Method")] + [len(m) for m in methods])
    n_w = max([1] + [len(str(r.n)) for r in section.rows])
    method_w = min(method_w, max(8, width // 4))  # a long plugin name folds rather than crowding numbers out
    widths = [max([max(len(w) for w in title.split())] + [len(row[i]) for row in plain])
              for i, title in enumerate(titles)]
    groups = split_columns([method_w, n_w], widths, width)
    if groups is None:  # too narrow for a table: one value per line
        console.print(section.title, style="bold", overflow="fold")
        for method, r, row in zip(methods, section.rows, styled, strict=True):
            console.print(f"{method} (n = {r.n})", overflow="fold")
            for title, text in zip(titles, row, strict=True):
                console.print(f"  {title}", overflow="fold")
                console.print(f"  {text}", overflow="fold")
        return True
    for part, group in enumerate(groups, 1):
        suffix = f" ({part}/{len(groups)})" if len(groups) > 1 else ""
        console.print(section.title + suffix, style="bold", overflow="fold")
        table = Table(box=BOX, padding=(0, PADDING), show_edge=False)
        table.add_column("Method", overflow="fold", max_width=method_w)
        table.add_column("n", justify="right", no_wrap=True, min_width=n_w)
        for i in group:
            table.add_column(_header(titles[i]), justify="right", no_wrap=True, min_width=widths[i])
        for method, r, row in zip(methods, section.rows, styled, strict=True):
            table.add_row(method, str(r.n), *(row[i] for i in group))
        console.print(table, width=width)
    return len(groups) > 1


def print_report_fitted(report: Report, console: Console, ci: bool = False, full: Path | None = None) -> None:
    """Table 1 of each section and the unusable runs, fitted to ``console.width``; when a table had to
    be split, say that ``full`` (the Markdown file) has it whole."""
    width = console.width
    split = False
    for section in report.sections:
        split = _print_section(section, console, ci, width) or split
    if not report.sections:
        console.print("No complete runs found.")
    if report.problems:
        console.print("Failed or incomplete runs", style="bold")
        table = Table(box=BOX, padding=(0, PADDING), show_edge=False)
        for col in ("run", "status", "problem"):
            table.add_column(col, overflow="fold")
        for r in report.problems:
            table.add_row(f"{r.dataset}/{r.method}/split{r.split}/seed{r.seed}", r.status, r.problem or "")
        console.print(table, width=width)
    if split and full is not None:
        console.print(f"(tables split to fit {width} columns; the whole table is in {full})", overflow="fold")
