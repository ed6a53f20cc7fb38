"""``osma-bench discover``: cluster a finished run's test features and record purity / NMI / ARI."""

from __future__ import annotations

from pathlib import Path

import typer

KMEANS = "kmeans"


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command("discover")
    def discover_command(
        run: Path = typer.Option(..., "--run", help="A finished run: results/<dataset>/<method>/split<k>/seed<s>."),
        k: list[int] = typer.Option(None, "--k", help="Cluster counts for k-means (repeatable). Default: the "
                                    "true class count and, when a Girish discovery exists, its count."),
        method: str = typer.Option(KMEANS, "--method", help="kmeans (any run with features) or a registered "
                                   "method that discovers unknown models itself, on a run of that method "
                                   "(girish: Girish et al.'s discovery rounds)."),
        data: Path = typer.Option(None, "--data", help="Dataset root for --method girish "
                                  "(default: datasets/<the run's dataset>)."),
        device: str = typer.Option("cpu", "--device", help="Device for --method girish (cpu, cuda, ...)."),
        seed: int = typer.Option(0, "--seed", help="k-means seed."),
    ) -> None:
        """Cluster the known test and unknown images of a run; write clustering.json in the run folder."""
        from rich.console import Console
        from rich.table import Table

        from osma_bench.discovery import evaluate as ev
        from osma_bench.discovery.runs import load_run
        from osma_bench.errors import OsmaError

        discover_run = None
        if method != KMEANS:
            from osma_bench.methods.registry import available_methods, get_method

            try:
                method_cls = get_method(method)
            except OsmaError as exc:
                raise OsmaError(f"--method {method!r}: not {KMEANS} and not a registered method ({exc})") from None
            discover_run = method_cls.discovery() if method_cls.discovers else None
            if discover_run is None:
                able = [m for m in available_methods() if get_method(m).discovers]
                raise OsmaError(f"--method {method!r} does not discover unknown models itself; choose {KMEANS} or "
                                f"one of {', '.join(able) or '(none registered)'}")
        console = Console()
        loaded = load_run(run)
        results = []
        if discover_run is not None:
            from osma_bench.harness.device import select_device

            root = data if data is not None else Path("datasets") / str(loaded.record.get("dataset"))
            found = discover_run(loaded, root, select_device(device),
                                 progress=lambda log: console.print(f"{method} round {log.round}: {log}"))
            results.append(ev.score_labels(loaded.true_ids, found.labels, method))
            ev.record_results(loaded, results)
        ks = list(k) if k else ev.default_ks(loaded)
        results += ev.kmeans_results(loaded, ks, seed=seed)
        path = ev.record_results(loaded, results)
        table = Table(title=f"clustering of {run} ({loaded.num_true_clusters} true classes)")
        for col in ("method", "k", "purity %", "NMI %", "ARI %"):
            table.add_column(col)
        for r in results:
            table.add_row(r["method"], str(r["k"]), f"{100 * r['purity']:.2f}", f"{100 * r['nmi']:.2f}",
                          f"{100 * r['ari']:.2f}")
        console.print(table)
        console.print(f"wrote {path}", markup=False)
