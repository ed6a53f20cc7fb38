"""The ``build-data mini`` command (registered on the ``build-data`` group by osma_bench.data.cli)."""

import typer


def register(build_data_app: typer.Typer) -> None:
    """Add the ``mini`` command to the ``build-data`` group."""
