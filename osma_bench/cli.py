"""The ``osma-bench`` command line: each area of the package registers its own commands."""

from __future__ import annotations

import sys

import typer

from osma_bench.errors import Interrupted, OsmaError

app = typer.Typer(
    name="osma-bench",
    help="Open-set model attribution benchmark: build datasets, run methods, evaluate, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Open-set model attribution benchmark: build datasets, run methods, evaluate, report."""


def _register_commands() -> None:
    from osma_bench.data import cli as data_cli
    from osma_bench.discovery import cli as discovery_cli
    from osma_bench.evaluation import cli as evaluation_cli
    from osma_bench.harness import cli as harness_cli
    from osma_bench.sweep import cli as sweep_cli

    data_cli.register(app)
    harness_cli.register(app)
    evaluation_cli.register(app)
    discovery_cli.register(app)
    sweep_cli.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the CLI, turning OsmaError into one clear line and exit 2.

    Usage errors (unknown option, missing argument) are reported by typer itself, exit 2. An OSError
    that reaches here (a file system problem) is one ``error:`` line naming the path, exit 2.
    """
    try:
        app(args=argv, prog_name="osma-bench")
    except OsmaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 130 if isinstance(exc, Interrupted) else 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a file system problem no layer above turned into an OsmaError
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        if exc.code == 130:  # typer's answer to a Ctrl-C it caught itself: say so
            print("error: interrupted", file=sys.stderr)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: the path it concerns and what went wrong (a full disk says so)."""
    from osma_bench.io import disk_full_error, is_disk_full

    if is_disk_full(exc) and exc.filename:
        return str(disk_full_error(exc.filename))
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}".replace("\n", " ")


if __name__ == "__main__":
    sys.exit(main())
