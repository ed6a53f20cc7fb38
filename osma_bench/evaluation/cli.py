"""Commands of the evaluation area: ``osma-bench eval`` (score file -> metrics.json) and ``report``."""

from __future__ import annotations

from pathlib import Path

import typer

from osma_bench.errors import OsmaError


def _eval(scores: Path, data: Path, split: int, out: Path | None, legacy: bool, bootstrap: int, seed: int) -> Path:
    from rich.console import Console
    from rich.table import Table

    from osma_bench.evaluation.evaluate import evaluate_file
    from osma_bench.io import write_json

    if bootstrap < 0:
        raise OsmaError(f"--bootstrap must be 0 or more, got {bootstrap}")
    result = evaluate_file(scores, data, split, legacy=legacy, bootstrap=bootstrap, seed=seed)
    target = (out if out is not None else scores.parent) / "metrics.json"
    write_json(target, result)
    table = Table(title=f"{result['method']} on split {split} ({'legacy' if legacy else 'tie-aware'} metrics, %)")
    for col in ("group", "n unknown", "AUC", "OSCR", "TNR@95TPR"):
        table.add_column(col, justify="right" if col != "group" else "left", no_wrap=True)
    for g, vals in result["open_set"].items():
        table.add_row(g, str(vals["n_unknown"]), f"{100 * vals['auroc']:.2f}", f"{100 * vals['oscr']:.2f}",
                      f"{100 * vals['tnr_at_95tpr']:.2f}")
    intervals = (result.get("bootstrap") or {}).get("open_set", {})
    boot_table = None
    if intervals:  # a table of its own, so that both fit an 80-column terminal
        boot = result["bootstrap"]
        boot_table = Table(title=f"95% intervals, percentiles of {boot['n']} bootstrap resamples (seed "
                                 f"{boot['seed']}), {boot['definition']} metrics (%)")
        for col in ("group", "AUC 95% CI", "OSCR 95% CI"):
            boot_table.add_column(col, justify="right" if col != "group" else "left", no_wrap=True)
        for g, vals in intervals.items():
            boot_table.add_row(g, *(f"[{100 * vals[m][0]:.2f}, {100 * vals[m][1]:.2f}]" if m in vals else "–"
                                    for m in ("auroc", "oscr")))
    console = Console()
    closed = result["closed_set"]
    console.print(f"closed-set accuracy {100 * closed['accuracy']:.2f}%, macro-F1 {100 * closed['macro_f1']:.2f}% "
                  f"on {closed['n']} known test images")
    console.print(table)
    if boot_table is not None:
        console.print(boot_table)
    console.print(f"wrote {target}")
    return target


def _report(results_dir: Path, out: Path, csv: Path | None, latex: Path | None, plots: Path | None,
            ci: bool, plot_format: str = "png", plot_titles: bool = True) -> None:
    from rich.console import Console

    from osma_bench.io import write_text
    from osma_bench.report import build_report, to_csv, to_latex, to_markdown, write_plots
    from osma_bench.report.plots import parse_formats
    from osma_bench.report.terminal import print_report_fitted

    if not results_dir.is_dir():
        raise OsmaError(f"{results_dir}: results folder not found")
    formats = parse_formats(plot_format)
    report = build_report(results_dir)
    console = Console()
    print_report_fitted(report, console, ci=ci, full=out)
    write_text(out, to_markdown(report, ci=ci))
    console.print(f"wrote {out}")
    if csv is not None:
        write_text(csv, to_csv(report))
        console.print(f"wrote {csv}")
    if latex is not None:
        write_text(latex, to_latex(report, ci=ci))
        console.print(f"wrote {latex}")
    if plots is not None:
        written, notes = write_plots(report, plots, formats=formats, titles=plot_titles)
        for note in notes:
            console.print(f"note: {note}")
        console.print(f"wrote {len(written)} plot(s) to {plots}")


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``report`` to ``app``."""

    @app.command("eval")
    def eval_command(
        scores: Path = typer.Option(..., "--scores", help="scores.h5 to evaluate (docs/EVALUATION.md)."),
        data: Path = typer.Option(..., "--data", help="Dataset folder (with dataset.json)."),
        split: int = typer.Option(..., "--split", help="Protocol split number the scores are for."),
        out: Path | None = typer.Option(None, "--out", help="Folder for metrics.json (default: the scores' folder)."),
        legacy: bool = typer.Option(False, "--legacy", help="POSE/ARPL evaluation code's AUROC/OSCR/TNR numbers."),
        bootstrap: int = typer.Option(0, "--bootstrap", help="Resamples for 95% intervals of AUROC and OSCR."),
        seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
    ) -> None:
        """Validate a score file against a dataset split and write metrics.json."""
        _eval(scores, data, split, out, legacy, bootstrap, seed)

    @app.command("report")
    def report_command(
        results_dir: Path = typer.Argument(Path("results"), help="Results folder (<dataset>/<method>/split<k>/seed<s>)."),
        out: Path = typer.Option(Path("LEADERBOARD.md"), "--out", help="Markdown report to write."),
        csv: Path | None = typer.Option(None, "--csv", help="Also write Table 1 as CSV (fractions)."),
        latex: Path | None = typer.Option(None, "--latex", help="Also write Table 1 as LaTeX (booktabs, fits a page)."),
        plots: Path | None = typer.Option(None, "--plots", help="Folder for plots (ROC, OSCR, histograms, t-SNE)."),
        plot_format: str = typer.Option("png", "--plot-format", metavar="FORMATS",
                                        help="Plot file formats, comma-separated: png, pdf, svg."),
        plot_titles: bool = typer.Option(True, "--plot-titles/--no-plot-titles",
                                         help="Titles on the plots (off for a paper, whose caption says it)."),
        ci: bool = typer.Option(False, "--ci", help="Show 95% intervals instead of standard deviations."),
    ) -> None:
        """Tables (and plots) of every run under RESULTS_DIR; writes LEADERBOARD.md."""
        _report(results_dir, out, csv, latex, plots, ci, plot_format, plot_titles)
