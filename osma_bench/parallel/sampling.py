"""Distributed class-balanced sampling: every process takes its contiguous share of each batch."""

from __future__ import annotations

from collections.abc import Iterator

from osma_bench.errors import OsmaError


class ShardedBatchSampler:
    """Wraps a batch sampler seeded identically on every process; process ``rank`` of ``size``
    takes positions ``[rank * b / size, (rank + 1) * b / size)`` of each batch of ``b``.

    The balanced sampler lays a batch out as ``per_class`` rows of one image per known class, so
    when ``size`` divides ``per_class`` every share is itself class-balanced, and the shares in
    rank order are the single-process batch.
    """

    def __init__(self, sampler, rank: int, size: int) -> None:
        if not 0 <= rank < size:
            raise ValueError(f"rank {rank} outside a world of {size}")
        self.sampler = sampler
        self.rank = rank
        self.size = size

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.sampler:
            batch = list(batch)
            if len(batch) % self.size:
                raise OsmaError(f"a training batch of {len(batch)} images cannot be split over {self.size} "
                                "processes; choose per_class divisible by the number of processes")
            share = len(batch) // self.size
            yield batch[self.rank * share : (self.rank + 1) * share]


class TurnTakingBatchSampler:
    """Process ``rank`` of ``size`` takes batches ``rank``, ``rank + size``, ... of ``sampler``
    (evaluation: each batch is predicted by exactly one process)."""

    def __init__(self, sampler, rank: int, size: int) -> None:
        self.sampler = sampler
        self.rank = rank
        self.size = size

    def __len__(self) -> int:
        return len(range(self.rank, len(self.sampler), self.size))

    def __iter__(self) -> Iterator[list[int]]:
        for position, batch in enumerate(self.sampler):
            if position % self.size == self.rank:
                yield batch
