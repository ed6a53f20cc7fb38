"""The training progress display (rich): epoch, step, the latest losses and images per second."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def format_losses(losses: dict[str, float]) -> str:
    """``{"loss_cls": 0.1234}`` -> ``"loss_cls 0.1234"``."""
    return "  ".join(f"{key} {value:.4g}" for key, value in losses.items())


class TrainingProgress:
    """A rich progress bar for one run; ``track`` wraps an epoch's batches."""

    def __init__(self, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[losses]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not enabled,
            transient=False,
        )
        self.images = 0
        self.seconds = 0.0

    def __enter__(self) -> TrainingProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def track(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], total: int, description: str,
              method) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``batches``, updating the bar after each step with ``method.step_losses``."""
        task = self.progress.add_task(description, total=total, losses="", rate="")
        self.images, self.seconds = 0, 0.0
        start = time.perf_counter()
        for images, labels in batches:
            yield images, labels
            self.images += int(images.shape[0])
            self.seconds = time.perf_counter() - start
            rate = self.images / self.seconds if self.seconds > 0 else 0.0
            self.progress.update(task, advance=1, losses=format_losses(getattr(method, "step_losses", {}) or {}),
                                 rate=f"{rate:.0f} img/s")
        self.seconds = time.perf_counter() - start

    @property
    def images_per_second(self) -> float:
        """Training images per second in the last tracked epoch."""
        return self.images / self.seconds if self.seconds > 0 else 0.0
