"""Commands of this area, registered on the main CLI app: ``tune``."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command("tune")
    def tune_command(
        method: str = typer.Option(..., "--method", "-m", help="registered method name"),
        data: Path = typer.Option(..., "--data", help="dataset folder (with dataset.json)"),
        split: int = typer.Option(1, "--split", help="protocol split k"),
        seed: int = typer.Option(0, "--seed", help="random seed"),
        profile: str = typer.Option("mini", "--profile", help="budget profile: smoke, mini or paper"),
        grid: list[str] | None = typer.Option(None, "--grid", help="key=v1,v2 (a list-valued key: "
                                              "key=a,b;c,d); repeat for more keys: every combination runs"),
        overrides: list[str] | None = typer.Option(None, "--set", help="a fixed setting of every point: key=value "
                                                   "(e.g. num_threads=1)"),
        cap: float = typer.Option(4.0, "--cap", help="stop a point whose projected training time exceeds CAP x "
                                  "Base's training time on the same data"),
        base_run: Path | None = typer.Option(None, "--base-run", help="a complete Base run of the same data and "
                                             "split whose training time sets the cap (default: run Base once)"),
        out: Path = typer.Option(Path("results_tune"), "--out", help="results root of the search's runs"),
        device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto"),
    ) -> None:
        """Search a method's declared hyperparameters on known-class validation accuracy only.

        Every point is a run in OUT (variant tune-<hash>); the choice reads run.json only, never
        test metrics. Writes OUT/<dataset>/tune/<method>-split<k>-seed<s>.json.
        """
        from rich.console import Console

        from osma_bench.tune.search import TuneRequest, tune

        console = Console(highlight=False)
        tune(TuneRequest(method=method, data=data, split=split, seed=seed, profile=profile, grid=list(grid or []),
                         fixed=list(overrides or []), cap=cap, base_run=base_run, out=out, device=device),
             say=console.print)
