"""``osma-bench robustness``: score a finished run on perturbed test images; write robustness.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from osma_bench.robustness.perturbations import DEFAULT_SPEC


def describe_cost(content: dict[str, Any]) -> str:
    """One line: passes, images, time, and the ratio to the run's own final evaluation."""
    timing = content["timing"]
    line = (f"robustness: {timing['passes']} passes (clean + {timing['passes'] - 1} perturbed) over "
            f"{content['images']} test images in {timing['total_s']:.1f} s (restore and finalize "
            f"{timing['restore_s']:.1f} s, clean pass {timing['clean_s']:.1f} s, perturbed passes "
            f"{timing['perturbed_s']:.1f} s)")
    if timing.get("ratio_to_final_eval") is not None:
        line += (f"; {timing['ratio_to_final_eval']:.1f}x the run's final evaluation "
                 f"({timing['final_eval_s']:.1f} s)")
    return line


def print_result(content: dict[str, Any], path: Path) -> None:
    """The rows as a table (percent), the cost line, and where the file went."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"{content['method']} split {content['split']} seed {content['seed']}: robustness (%)")
    for col in ("perturbation", "accuracy", "AUROC all", "OSCR all"):
        table.add_column(col, justify="left" if col == "perturbation" else "right")
    for row in content["rows"]:
        every = row["open_set"].get("all", {})
        table.add_row(row["perturbation"], f"{100 * row['closed_set']['accuracy']:.2f}",
                      f"{100 * every.get('auroc', float('nan')):.2f}", f"{100 * every.get('oscr', float('nan')):.2f}")
    console.print(table)
    if not content["clean_matches_metrics"]:
        console.print("[yellow]warning[/yellow]: the clean row differs from metrics.json (another machine, thread "
                      "count or library version than the run's?)")
    console.print(describe_cost(content), soft_wrap=True)
    console.print(f"wrote {path}")


def run_robustness(run: Path, perturb: list[str] | None, data: Path | None = None, batch_size: int | None = None,
                   device: str = "auto", interpolation: str = "bilinear", seed: int = 0, verify: bool = True,
                   skip_done: bool = False) -> dict[str, Any] | None:
    """Parse the options, run the pass (unless ``skip_done`` and it is done) and print the result."""
    from osma_bench.robustness import ROBUSTNESS_FILE
    from osma_bench.robustness.evaluate import (
        RobustnessRequest,
        robustness_done,
        robustness_pass,
    )
    from osma_bench.robustness.perturbations import Settings, parse_spec

    perturbations = parse_spec(perturb)
    settings = Settings(interpolation=interpolation, seed=seed)
    if skip_done and robustness_done(run, perturbations, settings):
        print(f"{Path(run) / ROBUSTNESS_FILE}: already done with this spec; nothing to do")
        return None
    request = RobustnessRequest(run=Path(run), perturbations=perturbations, settings=settings, data=data,
                                batch_size=batch_size, device=device, verify=verify)
    content = robustness_pass(request, progress=lambda line: print(f"robustness: {line}", flush=True))
    print_result(content, Path(run) / ROBUSTNESS_FILE)
    return content


def register(app: typer.Typer) -> None:
    """Add ``robustness`` to ``app``."""

    @app.command("robustness")
    def robustness_command(
        run: Path = typer.Option(..., "--run", help="A finished run: results/<dataset>/<method>/split<k>/seed<s> "
                                 "(with its checkpoints)."),
        perturb: list[str] | None = typer.Option(
            None, "--perturb", help=f"Perturbations, kind:strength,... (repeatable, or several in one quoted "
            f"text). Kinds: jpeg (quality), resize (scale), blur (sigma px), noise (std on [0,1]), crop "
            f"(fraction). Default: {DEFAULT_SPEC}"),
        batch_size: int | None = typer.Option(None, "--batch-size", help="Images per batch (default: the run's "
                                              "eval_batch_size); the results do not depend on it."),
        data: Path | None = typer.Option(None, "--data", help="Dataset folder (default: datasets/<the run's "
                                         "dataset>)."),
        device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto"),
        interpolation: str = typer.Option("bilinear", "--interpolation", help="Resampling of resize and crop: "
                                          "bilinear or bicubic (antialias on)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the noise perturbation (per image: seed, "
                                 "strength, image index)."),
        verify: bool = typer.Option(True, "--verify/--no-verify", help="Check the dataset's checksums first."),
    ) -> None:
        """Score a finished run's method on perturbed copies of its test and unknown images; write
        robustness.json beside metrics.json (docs/ROBUSTNESS.md)."""
        run_robustness(run, perturb, data, batch_size, device, interpolation, seed, verify)
