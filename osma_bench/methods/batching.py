"""Re-batching a stream of training batches (for methods whose paper uses a fixed batch size)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch


def rebatch(loader: Iterable[tuple[torch.Tensor, torch.Tensor]], batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Re-cut a stream of shuffled batches into batches of ``batch_size`` (the last may be short).

    The harness's plain shuffled loader yields ``per_class * K`` images per step; methods whose paper
    trains with a fixed batch size use this to train on exactly that size.
    """
    pending_x: list[torch.Tensor] = []
    pending_y: list[torch.Tensor] = []
    held = 0
    for images, labels in loader:
        pending_x.append(images)
        pending_y.append(labels)
        held += len(labels)
        if held < batch_size:
            continue
        x, y = torch.cat(pending_x), torch.cat(pending_y)
        full = (len(y) // batch_size) * batch_size
        for start in range(0, full, batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
        pending_x, pending_y, held = [x[full:]], [y[full:]], len(y) - full
    if held:
        yield torch.cat(pending_x), torch.cat(pending_y)
