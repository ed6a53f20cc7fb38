"""The ``build-data mini`` command (registered on the ``build-data`` group by osma_bench.data.cli)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import typer


def build_mini_command(
    out: Path = typer.Option(Path("datasets/mini"), "--out", help="dataset folder to create"),
    seed: int = typer.Option(0, "--seed", help="build seed: same seed -> same dataset content hash"),
    size: int = typer.Option(32, "--size", help="image side: 32 (default) or 64"),
    scale: str = typer.Option("full", "--scale", help="full (the benchmark) or tiny (seconds, for tests)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing dataset at --out"),
    workers: int = typer.Option(0, "--workers", help="training processes (0: one per CPU, at most 4)"),
) -> None:
    """Build the embedded mini benchmark: real patches from package-shipped photos, generators trained here."""
    from rich.console import Console

    from osma_bench.data.mini.build import build_mini
    from osma_bench.data.reader import load_card
    from osma_bench.errors import Interrupted
    from osma_bench.phases import PhaseProgress

    console = Console(stderr=True)
    command = "osma-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    t0 = time.perf_counter()
    with PhaseProgress(console) as progress:  # bars on a terminal, a line per phase elsewhere
        try:
            root = build_mini(out, seed=seed, size=size, scale=scale, overwrite=overwrite,
                              workers=workers or None, command=command, progress=progress.update)
        except KeyboardInterrupt:
            raise Interrupted(f"build of {out} interrupted; nothing was kept (the mini benchmark builds in one "
                              "go, it has no --resume): rerun the same command") from None
    card = load_card(root)
    print(f"wrote {root}: {card['num_images']} images, {len(card['classes'])} classes "
          f"({len(card['generators'])} generators), splits {', '.join(card['splits'])}; "
          f"content sha256 {card['content_sha256'][:16]}; {time.perf_counter() - t0:.0f} s")


def register(build_data_app: typer.Typer) -> None:
    """Add the ``mini`` command to the ``build-data`` group."""
    build_data_app.command("mini")(build_mini_command)
