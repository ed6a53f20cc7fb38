"""Commands of the evaluation area: ``osma-bench eval`` (score file -> metrics.json) and ``report``."""

from __future__ import annotations

from pathlib import Path

import typer

from osma_bench.errors import OsmaError

#: Most bootstrap resamples ``eval`` accepts (each one re-sorts every score).
MAX_BOOTSTRAP = 100_000


def _eval(scores: Path, data: Path, split: int, out: Path | None, legacy: bool, bootstrap: int, seed: int) -> Path:
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
    target = (out if out is not None else scores.parent) / "metrics.json"
    if legacy and out is None and (scores.parent / "run.json").is_file():
        raise OsmaError(f"{target}: belongs to the run in {scores.parent}; --legacy would replace its tie-aware "
                        "metrics. Pass --out FOLDER to write the legacy metrics elsewhere")
    result = evaluate_file(scores, data, split, legacy=legacy, bootstrap=bootstrap, seed=seed)
    write_json(target, result)
    table = Table(title=f"{result['method']} on split {split} ({'legacy' if legacy else 'tie-aware'} metrics, %)")
    for col in ("group", "n unknown", "AUC", "OSCR", "TNR@95TPR"):
        table.add_column(col, justify="right" if col != "group" else "left")
    for g, vals in result["open_set"].items():
        table.add_row(g, str(vals["n_unknown"]), f"{100 * vals['auroc']:.2f}", f"{100 * vals['oscr']:.2f}",
                      f"{100 * vals['tnr_at_95tpr']:.2f}")
    console = Console()
    closed = result["closed_set"]
    console.print(f"closed-set accuracy {100 * closed['accuracy']:.2f}%, macro-F1 {100 * closed['macro_f1']:.2f}% "
                  f"on {closed['n']} known test images")
    console.print(table)
    console.print(f"wrote {target}", markup=False)
    return target


def _report(results_dir: Path, out: Path, csv: Path | None, latex: Path | None, plots: Path | None,
            ci: bool) -> None:
    from rich.console import Console

    from osma_bench.io import write_text
    from osma_bench.report import build_report, print_report, to_csv, to_latex, to_markdown, write_plots

    if not results_dir.is_dir():
        raise OsmaError(f"{results_dir}: results folder not found")
    for option, path in (("--out", out), ("--csv", csv), ("--latex", latex)):
        if path is not None and path.is_dir():
            raise OsmaError(f"{option} {path}: is a folder; give a file name (e.g. {path / 'LEADERBOARD.md'})")
    if plots is not None and plots.exists() and not plots.is_dir():
        raise OsmaError(f"--plots {plots}: exists and is not a folder")
    report = build_report(results_dir)
    if not report.sections:
        found = f"{len(report.problems)} unusable run(s), none complete" if report.problems else "no runs"
        raise OsmaError(f"{results_dir}: {found} (expected <dataset>/<method>/split<k>/seed<s>/ folders); "
                        f"{out} not written")
    console = Console()
    print_report(report, console, ci=ci)
    write_text(out, to_markdown(report, ci=ci))
    console.print(f"wrote {out}", markup=False)
    if csv is not None:
        write_text(csv, to_csv(report))
        console.print(f"wrote {csv}", markup=False)
    if latex is not None:
        write_text(latex, to_latex(report, ci=ci))
        console.print(f"wrote {latex}", markup=False)
    if plots is not None:
        written, notes = write_plots(report, plots)
        for note in notes:
            console.print(f"note: {note}", markup=False)
        console.print(f"wrote {len(written)} plot(s) to {plots}", markup=False)


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
        latex: Path | None = typer.Option(None, "--latex", help="Also write Table 1 as LaTeX (booktabs)."),
        plots: Path | None = typer.Option(None, "--plots", help="Folder for PNG plots (ROC, OSCR, histograms, t-SNE)."),
        ci: bool = typer.Option(False, "--ci", help="Show 95% intervals instead of standard deviations."),
    ) -> None:
        """Tables (and plots) of every run under RESULTS_DIR; writes LEADERBOARD.md."""
        _report(results_dir, out, csv, latex, plots, ci)
