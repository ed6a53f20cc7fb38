"""Commands of this area, registered on the main CLI app."""

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""
