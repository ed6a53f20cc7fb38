"""Commands of this area, registered on the main CLI app."""

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command("methods")
    def methods_command() -> None:
        """List registered methods: name, paper, package."""
        from rich.console import Console
        from rich.table import Table

        from osma_bench.methods.registry import describe_methods

        table = Table(title="osma-bench methods (entry-point group osma_bench.methods)")
        for col in ("name", "paper", "package", "status"):
            table.add_column(col)
        for info in describe_methods():
            table.add_row(info.name, info.paper, info.package, "ok" if info.error is None else info.error)
        Console().print(table)
