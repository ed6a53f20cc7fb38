"""From the ``sweep`` command's arguments to a checked plan, and from a plan to a finished sweep.

:func:`plan` reads the dataset card, expands the grid and runs the preflight checks;
:func:`execute` drives the grid through an executor under a lock, shows progress, writes
``<logs>/<dataset>.sweep.json`` and prints the summary. The command each run executes is
``Sweep.command`` (``osma-bench run ... --resume`` by default; tests substitute a fake runner); a
complete run still needing its robustness pass (``--robustness``) is run again for that alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from osma_bench.sweep.command import CommandBuilder, RunSettings
from osma_bench.sweep.display import SweepProgress, print_summary
from osma_bench.sweep.driver import run_sweep, sweep_lock, write_record
from osma_bench.sweep.executor import Executor
from osma_bench.sweep.grid import (
    GridPoint,
    card_splits,
    expand_grid,
    parse_methods,
    parse_seeds,
    parse_splits,
)
from osma_bench.sweep.outcome import SweepReport
from osma_bench.sweep.state import COMPLETE, MISSING, run_state


@dataclass(frozen=True)
class SweepRequest:
    """The ``sweep`` command's arguments (methods, splits and seeds as typed by the user)."""

    data: Path
    methods: str = "all"
    splits: str = "all"
    seeds: str = "0"
    profile: str = "mini"
    out: Path = Path("results")
    overrides: tuple[str, ...] = ()
    variant: str | None = None
    device: str = "auto"
    epochs: int | None = None
    logs: Path | None = None
    verify: bool = True
    preflight: bool = True
    processes: int = 1
    robustness: str | None = None


@dataclass
class Sweep:
    """A checked grid, ready to run."""

    dataset: str
    points: list[GridPoint]
    settings: RunSettings
    logs: Path
    info: dict
    command: CommandBuilder | None = None  # default: settings.command (osma-bench run)

    def __post_init__(self) -> None:
        if self.command is None:
            self.command = self.settings.command

    def print_plan(self, console: Console) -> None:
        """The grid with what each run needs (skip / resume / new)."""
        table = Table(title=f"sweep plan: {len(self.points)} runs on {self.dataset} ({self.settings.profile})",
                      title_justify="left")
        for col in ("method", "split", "seed", "action", "note"):
            table.add_column(col)
        actions = {COMPLETE: "skip (complete)", MISSING: "run", "partial": "resume"}
        for point in self.points:
            state = run_state(point.run_dir)
            action = actions[state.state]
            if state.state == COMPLETE and self.settings.pending(point):
                action = "robustness only"
            note = ""
            if state.profile and state.profile != self.settings.profile:
                note = f"made with profile {state.profile}"
            table.add_row(point.method, str(point.split), str(point.seed), action, note)
        console.print(table)


def sweep_variant(variant: str | None, overrides: tuple[str, ...]) -> str | None:
    """The variant every run of the sweep gets: ``--variant NAME``, or with ``auto`` a name made of
    the ``--set`` values that change results (runtime keys left out), passed to each run as is."""
    from osma_bench.harness.config import RUNTIME_KEYS, parse_overrides
    from osma_bench.results import check_variant, variant_from_settings

    if variant != "auto":
        return check_variant(variant)
    settings = {k: v for k, v in parse_overrides(list(overrides)).items() if k not in RUNTIME_KEYS}
    return variant_from_settings(settings)


def plan(request: SweepRequest) -> Sweep:
    """Read the card, expand and check the grid; OsmaError for anything the user must fix first."""
    from osma_bench.data import load_card
    from osma_bench.methods.registry import available_methods
    from osma_bench.sweep.preflight import check_configs, check_dataset

    card = load_card(request.data)
    dataset = str(card.get("name") or Path(request.data).name)
    methods = parse_methods(request.methods, available_methods())
    splits = parse_splits(request.splits, card_splits(card), Path(request.data))
    seeds = parse_seeds(request.seeds)
    if request.preflight:
        check_configs(methods, request.profile, list(request.overrides), request.epochs, int(card["image_size"]),
                      Path(request.data), request.processes)
    if request.verify:
        check_dataset(Path(request.data))
    robustness = None
    if request.robustness is not None:
        from osma_bench.robustness.perturbations import format_spec, parse_spec

        robustness = format_spec(parse_spec(request.robustness))
    logs = Path(request.logs) if request.logs is not None else Path(request.out) / ".sweep"
    variant = sweep_variant(request.variant, request.overrides)
    settings = RunSettings(data=Path(request.data), profile=request.profile, out=Path(request.out),
                           device=request.device, epochs=request.epochs, overrides=tuple(request.overrides),
                           variant=variant, processes=request.processes, robustness=robustness)
    points = expand_grid(dataset, methods, splits, seeds, Path(request.out), logs, variant)
    info = {"dataset": dataset, "dataset_sha256": card.get("content_sha256"), "data": str(request.data),
            "methods": methods, "splits": splits, "seeds": seeds, "profile": request.profile,
            "overrides": list(request.overrides), "variant": variant, "device": request.device,
            "epochs": request.epochs, "processes_per_run": request.processes, "robustness": robustness}
    return Sweep(dataset, points, settings, logs, info)


def other_profile_runs(sweep: Sweep) -> list[tuple[GridPoint, str]]:
    """Complete runs made with a profile other than the sweep's (they are kept and skipped)."""
    found = []
    for point in sweep.points:
        state = run_state(point.run_dir)
        if state.state == COMPLETE and state.profile and state.profile != sweep.settings.profile:
            found.append((point, state.profile))
    return found


def marked_running(sweep: Sweep) -> list[GridPoint]:
    """Incomplete runs whose run.json still says ``running``: killed without notice, or alive elsewhere."""
    states = [(p, run_state(p.run_dir)) for p in sweep.points]
    return [p for p, state in states if state.state != COMPLETE and state.record.get("status") == "running"]


def execute(sweep: Sweep, executor: Executor, console: Console, tail: int = 15,
            live: bool | None = None) -> SweepReport:
    """Run the sweep (see the module docstring) and return its report."""
    with sweep_lock(sweep.logs / f"{sweep.dataset}.lock"):
        mismatched = other_profile_runs(sweep)
        if mismatched:
            point, profile = mismatched[0]
            console.print(f"[yellow]warning[/yellow]: {len(mismatched)} complete run(s) were made with another "
                          f"profile (e.g. {point.label}: {profile}); they are kept and skipped. Use another "
                          "--out to sweep this profile separately.", soft_wrap=True)
        running = marked_running(sweep)
        if running:
            console.print(f"[yellow]note[/yellow]: {len(running)} run(s) say status running (e.g. "
                          f"{running[0].label}); they are resumed. If a previous sweep's Slurm jobs may still be "
                          "alive, stop this sweep and cancel them first (their names start with osma-).",
                          soft_wrap=True)
        console.print(f"sweep: {len(sweep.points)} runs on {sweep.dataset}, profile {sweep.settings.profile}; "
                      f"{escape(executor.describe())}; logs in {escape(str(sweep.logs))}", highlight=False, soft_wrap=True)
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with SweepProgress(console, live=live) as progress:
            report = run_sweep(sweep.points, sweep.command, executor, progress, sweep.settings.pending)
        write_record(sweep.logs / f"{sweep.dataset}.sweep.json", report,
                     {**sweep.info, "executor": executor.describe(), "started": started})
    print_summary(console, report, tail)
    return report
