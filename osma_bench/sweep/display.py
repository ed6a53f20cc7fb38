"""What a sweep shows: one live progress display for the whole grid, a line per finished run, and
the final summary with a table of failures (each with the last lines its run printed).

The live bars (grid total plus one bar per running job, from its ``run.json``) appear only on a
terminal; the per-run lines are printed everywhere, so a log file of the sweep reads well too.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from osma_bench.sweep.grid import GridPoint
from osma_bench.sweep.outcome import CANCELLED, DONE, FAILED, NOT_RUN, SKIPPED, Outcome, SweepReport, log_tail
from osma_bench.sweep.state import RunState


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def metrics_brief(run_dir) -> str:
    """``accuracy 91.20  AUROC 80.10`` from a finished run's metrics.json (empty when unreadable)."""
    import json

    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        acc = 100 * metrics["closed_set"]["accuracy"]
        auroc = 100 * metrics["open_set"]["all"]["auroc"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return f"accuracy {acc:.2f}  AUROC {auroc:.2f}"


class SweepProgress:
    """The live display of one sweep (use as a context manager)."""

    def __init__(self, console: Console, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, disable=not self.live,
                                 refresh_per_second=4)
        self.tasks: dict[GridPoint, TaskID] = {}
        self.total = self.finished_count = self.failed = 0
        self.grid: TaskID | None = None

    def __enter__(self) -> SweepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def _grid_text(self) -> str:
        failed = f", [red]{self.failed} failed[/red]" if self.failed else ""
        return f"[bold]grid[/bold] ({len(self.tasks)} running{failed})"

    def begin(self, total: int, already: int) -> None:
        """The grid has ``total`` runs, ``already`` of them complete before the sweep started."""
        self.total, self.finished_count = total, already
        self.grid = self.progress.add_task(self._grid_text(), total=total, completed=already)

    def started(self, point: GridPoint) -> None:
        self.tasks[point] = self.progress.add_task(f"  {escape(point.label)}", total=None)
        self.progress.update(self.grid, description=self._grid_text())

    def update(self, point: GridPoint, state: RunState) -> None:
        """Show the epochs a running job has finished (from its run.json)."""
        task = self.tasks.get(point)
        if task is None:
            return
        done, total = state.progress
        what = f"epoch {done}/{total}" if total else "starting"
        if total and done >= total:
            what = "evaluating"
        self.progress.update(task, completed=done, total=total, description=f"  {escape(point.label)}: {what}")

    def finished(self, outcome: Outcome) -> None:
        """Drop the job's bar, advance the grid, print one line."""
        task = self.tasks.pop(outcome.point, None)
        if task is not None:
            self.progress.remove_task(task)
        if outcome.status in (DONE, FAILED):
            self.finished_count += 1
            self.failed += outcome.status == FAILED
            self.progress.update(self.grid, advance=1)
        self.progress.update(self.grid, description=self._grid_text())
        width = len(str(self.total))
        head = f"[{self.finished_count:>{width}}/{self.total}]"
        took = format_seconds(outcome.seconds)
        resumed = " (resumed)" if outcome.resumed else ""
        if outcome.status == DONE:
            self.console.print(f"{head} [green]done[/green]   {escape(outcome.point.label)}{resumed}  {took}  "
                               f"{metrics_brief(outcome.point.run_dir)}", highlight=False, soft_wrap=True)
        elif outcome.status == FAILED:
            self.console.print(f"{head} [red]FAILED[/red] {escape(outcome.point.label)}{resumed}  {took}  "
                               f"{escape(outcome.reason or '')}", highlight=False, soft_wrap=True)
        else:
            self.console.print(f"{head} {outcome.status} {escape(outcome.point.label)}", highlight=False, soft_wrap=True)


def print_summary(console: Console, report: SweepReport, tail: int) -> None:
    """Counts and wall time, then a table of failures with the last ``tail`` log lines of each."""
    counts = [(DONE, "done"), (SKIPPED, "already complete"), (FAILED, "failed"), (CANCELLED, "cancelled"),
              (NOT_RUN, "not started")]
    parts = [f"{report.count(s)} {label}" for s, label in counts if report.count(s)]
    state = "interrupted" if report.interrupted else "finished"
    console.print(f"sweep {state} in {format_seconds(report.wall_s)}: {len(report.outcomes)} runs; "
                  f"{', '.join(parts) or 'nothing to do'}", highlight=False, soft_wrap=True)
    failed = report.failed
    if failed:
        table = Table(title=f"{len(failed)} failed run(s)", title_justify="left")
        table.add_column("run", no_wrap=True)
        table.add_column("reason", overflow="fold")
        table.add_column("log", overflow="fold")
        for outcome in failed:
            table.add_row(Text(outcome.point.label), Text(outcome.reason or ""), Text(str(outcome.point.log)))
        console.print(table)
        for outcome in failed:
            lines = log_tail(outcome.point, tail)
            console.rule(f"{escape(outcome.point.label)}: last {len(lines)} line(s) of its log", align="left")
            console.print(Text("\n".join(lines) if lines else "(no output)"), soft_wrap=True)
    if report.interrupted or failed:
        console.print("rerun the same command to retry: complete runs are skipped, the others resume.",
                      highlight=False)
