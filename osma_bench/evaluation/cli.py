"""Commands of the evaluation area: ``osma-bench eval`` (score file -> metrics.json) and ``report``."""

from __future__ import annotations

from pathlib import Path

import typer

from osma_bench.errors import OsmaError

#: Most bootstrap resamples ``eval`` accepts (each one re-sorts every score).
MAX_BOOTSTRAP = 100_000


def _eval(scores: Path, data: Path, split: int, out: Path | None, legacy: bool, bootstrap: int, seed: int,
          profile: str | None = None, protocol: str | None = None) -> Path:
    from rich.console import Console
    from rich.table import Table

    from osma_bench.evaluation.evaluate import evaluate_file
    from osma_bench.io import write_json

    if not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise OsmaError(f"--bootstrap must be between 0 and {MAX_BOOTSTRAP} resamples, got {bootstrap} "
                        "(10000 already gives stable 95% intervals)")
    if not 0 <= seed < 2**63:
        raise OsmaError(f"--seed must be between 0 and 2^63 - 1, got {seed}")
    if out is not None and out.exists() and not out.is_dir():
        raise OsmaError(f"--out {out}: exists and is not a folder (it names the folder for metrics.json)")
    result = evaluate_file(scores, data, split, legacy=legacy, bootstrap=bootstrap, seed=seed)
    declared = declared_protocol(profile, protocol)
    if declared:
        result["protocol"] = declared
    target = (out if out is not None else scores.parent) / "metrics.json"
    if legacy and out is None and (scores.parent / "run.json").is_file():
        raise OsmaError(f"{target}: belongs to the run in {scores.parent}; --legacy would replace its tie-aware "
                        "metrics. Pass --out FOLDER to write the legacy metrics elsewhere")
    result = evaluate_file(scores, data, split, legacy=legacy, bootstrap=bootstrap, seed=seed)
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
    console.print(f"wrote {target}", markup=False)
    return target


def _report(results_dir: Path, out: Path, csv: Path | None, latex: Path | None, plots: Path | None,
            ci: bool, methods: str | None = None, splits: str | None = None, seeds: str | None = None,
            profile: str | None = None, runs_csv: Path | None = None, plot_format: str = "png",
            plot_titles: bool = True) -> None:
    from rich.console import Console

    from osma_bench.io import write_text
    from osma_bench.report import build_report, to_csv, to_latex, to_markdown, write_plots
    from osma_bench.report.plots import parse_formats
    from osma_bench.report.terminal import print_report_fitted
    from osma_bench.report.writers import runs_csv as per_run_csv

    if not results_dir.is_dir():
        raise OsmaError(f"{results_dir}: results folder not found")
    for option, path in (("--out", out), ("--csv", csv), ("--latex", latex)):
        if path is not None and path.is_dir():
            raise OsmaError(f"{option} {path}: is a folder; give a file name (e.g. {path / 'LEADERBOARD.md'})")
    if plots is not None and plots.exists() and not plots.is_dir():
        raise OsmaError(f"--plots {plots}: exists and is not a folder")
    formats = parse_formats(plot_format)
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    report = build_report(results_dir, methods=chosen, splits=_parse_ints(splits, "--splits"),
                          seeds=_parse_ints(seeds, "--seeds"), profile=profile)
    if not report.sections:
        found = f"{len(report.problems)} unusable run(s), none complete" if report.problems else "no runs"
        raise OsmaError(f"{results_dir}: {found} (expected <dataset>/<method>/split<k>/seed<s>/ folders); "
                        f"{out} not written")
    console = Console()
    print_report_fitted(report, console, ci=ci, full=out)
    write_text(out, to_markdown(report, ci=ci))
    console.print(f"wrote {out}", markup=False)
    if csv is not None:
        write_text(csv, to_csv(report))
        console.print(f"wrote {csv}", markup=False)
    if runs_csv is not None:
        write_text(runs_csv, per_run_csv(report))
        console.print(f"wrote {runs_csv}", markup=False)
    if latex is not None:
        write_text(latex, to_latex(report, ci=ci))
        console.print(f"wrote {latex}", markup=False)
    if plots is not None:
        written, notes = write_plots(report, plots, formats=formats, titles=plot_titles)
        for note in notes:
            console.print(f"note: {note}", markup=False)
        console.print(f"wrote {len(written)} plot(s) to {plots}", markup=False)


def declared_protocol(profile: str | None, protocol: str | None) -> dict[str, str]:
    """What a score file's maker says it followed (recorded in metrics.json under ``protocol``):
    the budget profile it trained under, and free text describing the protocol (``--protocol``).
    Such external runs pool and rank with harness runs of the same dataset version, split and
    profile, marked as external."""
    from osma_bench.harness.config import PROFILES

    declared = {}
    if profile is not None:
        if profile not in PROFILES:
            raise OsmaError(f"--profile {profile!r}: choose one of {', '.join(PROFILES)} (the budget the scores' "
                            "method trained under)")
        declared["profile"] = profile
    if protocol is not None:
        text = protocol.strip()
        if not text or len(text) > 200 or any(ord(c) < 32 for c in text):
            raise OsmaError("--protocol: give 1-200 printable characters describing what the method followed")
        declared["protocol"] = text
    return declared


def _parse_ints(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise OsmaError(f"{flag} expects comma-separated integers, got {text!r}") from None


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
        profile: str | None = typer.Option(None, "--profile", help="The budget profile the scores' method "
                                           "trained under (smoke, mini, paper): the run then pools and ranks "
                                           "with harness runs of that profile, marked external."),
        protocol: str | None = typer.Option(None, "--protocol", help="Free text: what else the method followed "
                                            "(recorded in metrics.json)."),
    ) -> None:
        """Validate a score file against a dataset split and write metrics.json."""
        _eval(scores, data, split, out, legacy, bootstrap, seed, profile, protocol)

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
        methods: str | None = typer.Option(None, "--methods", help="Only these methods (comma-separated; a "
                                           "variant as 'pose [no_div]')."),
        splits: str | None = typer.Option(None, "--splits", help="Only these splits, e.g. 1,2."),
        seeds: str | None = typer.Option(None, "--seeds", help="Only these seeds, e.g. 0,1,2."),
        profile: str | None = typer.Option(None, "--profile", help="Only runs of this profile."),
        runs_csv: Path | None = typer.Option(None, "--runs-csv", help="Also write every run (metrics and "
                                             "provenance) as CSV, one line per run."),
    ) -> None:
        """Tables (and plots) of every run under RESULTS_DIR; writes LEADERBOARD.md."""
        _report(results_dir, out, csv, latex, plots, ci, methods, splits, seeds, profile, runs_csv, plot_format,
                plot_titles)
