"""Reports from a results folder: the paper's tables (Markdown, CSV, LaTeX, terminal) and plots.

``build_report(results_dir) -> Report`` collects and aggregates the runs; ``to_markdown``,
``to_csv``, ``to_latex``, ``print_report`` and ``write_plots`` render it. ``osma-bench report``
(osma_bench/evaluation/cli.py) is the only writer of LEADERBOARD.md.
"""

from osma_bench.report.plots import write_plots
from osma_bench.report.tables import Report, Section, build_report
from osma_bench.report.writers import print_report, to_csv, to_latex, to_markdown

__all__ = ["Report", "Section", "build_report", "print_report", "to_csv", "to_latex", "to_markdown", "write_plots"]
