"""The ``osma-bench`` command line: each area of the package registers its own commands."""

from __future__ import annotations

import sys

import typer

from osma_bench.errors import Interrupted, OsmaError
from osma_bench.harness.threads import prefer_passive_wait

prefer_passive_wait()  # OpenMP reads it when torch is loaded: before any command imports torch

PROG = "osma-bench"
COMPLETE_VAR = "_OSMA_BENCH_COMPLETE"  # click's name for PROG's completion variable

app = typer.Typer(
    name=PROG,
    help="Open-set model attribution benchmark: build datasets, run methods, evaluate, report.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion, and _OSMA_BENCH_COMPLETE=complete_bash
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from osma_bench import __version__

        print(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Open-set model attribution benchmark: build datasets, run methods, evaluate, report."""


def _register_commands() -> None:
    from osma_bench.data import cli as data_cli
    from osma_bench.discovery import cli as discovery_cli
    from osma_bench.evaluation import cli as evaluation_cli
    from osma_bench.harness import cli as harness_cli
    from osma_bench.robustness import cli as robustness_cli
    from osma_bench.sweep import cli as sweep_cli
    from osma_bench.tune import cli as tune_cli

    data_cli.register(app)
    harness_cli.register(app)
    evaluation_cli.register(app)
    discovery_cli.register(app)
    sweep_cli.register(app)
    robustness_cli.register(app)
    tune_cli.register(app)


_register_commands()


@app.command("completion")
def completion_command(shell: str = typer.Argument(..., metavar="SHELL", help="bash or zsh (fish, powershell too)")) -> None:
    """Print the shell completion script: eval "$(osma-bench completion bash)" in ~/.bashrc
    (zsh: ~/.zshrc)."""
    from typer._completion_classes import completion_init
    from typer._completion_shared import get_completion_script

    completion_init()
    if shell not in ("bash", "zsh", "fish", "powershell"):
        raise OsmaError(f"completion: unknown shell {shell!r}; choose bash or zsh (or fish, powershell)")
    print(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell))


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the CLI, turning OsmaError into one clear line and exit 2.

    Usage errors (unknown option, missing argument) are reported by typer itself, exit 2. An OSError
    that reaches here (a file system problem) is one ``error:`` line naming the path, exit 2.
    """
    from typer.main import get_command

    from osma_bench.cli_words import use_words

    try:
        use_words(get_command(app))(args=argv, prog_name=PROG)
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
