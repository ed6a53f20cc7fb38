"""The harness's view of a dataset: checks, class-balanced training batches, ordered eval batches.

Batches are ``(images, labels)``: float32 (B, 3, H, W) in [-1, 1] on the run's device and int64
labels (docs/CONTRACTS.md section 2). A partition small enough (``preload_limit_mb``) is read into
memory once as uint8; a larger one streams through a torch DataLoader with ``num_workers``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from osma_bench.data import BalancedBatchSampler, OSMADataset, load_card, read_split, verify_dataset
from osma_bench.errors import OsmaError
from osma_bench.io import sha256_file
from osma_bench.protocol import TEST_PARTITIONS

#: Groups of the score file, in order (docs/CONTRACTS.md section 3).


def to_device_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32 in [-1, 1] on ``device``."""
    return images.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


@dataclass
class DatasetInfo:
    """What a run records about its dataset."""

    root: Path
    card: dict
    card_sha256: str
    num_classes: int
    image_size: int

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.root.name))

    @property
    def content_sha256(self) -> str:
        return str(self.card.get("content_sha256", ""))


def open_dataset(root: str | os.PathLike, split: int, verify: bool = True) -> DatasetInfo:
    """Check the dataset (card, shard checksums, the split) and describe it; OsmaError if unusable."""
    root = Path(root)
    card = load_card(root)
    if verify:
        problems = verify_dataset(root, content_hash=True)
        if problems:
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            raise OsmaError(f"dataset {root} failed verification: {shown} (rebuild it or run osma-bench verify-data)")
    info = read_split(root, split)
    for part in ("train", "val", *TEST_PARTITIONS):
        if part not in info.partitions:
            raise OsmaError(f"dataset {root}: split {split} lacks partition {part!r}")
    return DatasetInfo(root, card, sha256_file(root / "dataset.json"), len(info.known_classes), int(card["image_size"]))


class Partition:
    """One partition of one split, preloaded into memory or streamed from the HDF5 store."""

    def __init__(self, root: Path, split: int, name: str, device: torch.device, preload_limit_mb: float,
                 num_workers: int) -> None:
        self.dataset = OSMADataset(root, split, name)
        self.name = name
        self.device = device
        self.num_workers = int(num_workers)
        self.labels = np.asarray(self.dataset.labels, dtype=np.int64)
        self.indices = np.asarray(self.dataset.indices, dtype=np.int64)
        size = self.dataset.image_size
        nbytes = len(self.labels) * 3 * size * size
        self.images: torch.Tensor | None = None
        if nbytes <= preload_limit_mb * 2**20:
            self.images, _ = self.dataset.load_all(as_float=False)
        self.labels_t = torch.from_numpy(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def sha256(self) -> np.ndarray:
        """Content SHA-256 of every image (``S64``), in partition order."""
        return self.dataset.sha256()

    def batches(self, sampler) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of the positions ``sampler`` yields (lists of positions in this partition)."""
        if self.images is not None:
            for positions in sampler:
                pos = torch.as_tensor(positions, dtype=torch.int64)
                yield to_device_float(self.images[pos], self.device), self.labels_t[pos].to(self.device)
            return
        loader = DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.num_workers,
                            pin_memory=self.device.type == "cuda", persistent_workers=False)
        for images, labels, _ in loader:
            yield to_device_float(images, self.device), labels.to(self.device, dtype=torch.int64)


class Batches:
    """An iterable of batches with a length (steps), re-iterable once per epoch."""

    def __init__(self, partition: Partition, sampler) -> None:
        self.partition = partition
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.partition.batches(self.sampler)


class SequentialSampler:
    """Positions 0..n-1 in order, in batches of ``batch_size`` (the last may be short)."""

    def __init__(self, n: int, batch_size: int) -> None:
        self.n = n
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for start in range(0, self.n, self.batch_size):
            yield list(range(start, min(start + self.batch_size, self.n)))


class ShuffledSampler:
    """Plain shuffled batches (for methods that do not want class balance); epoch-seeded."""

    def __init__(self, n: int, batch_size: int, seed: int, num_steps: int | None = None) -> None:
        self.n = n
        self.batch_size = min(batch_size, n)
        self.seed = seed
        self.num_steps = num_steps or max(1, n // self.batch_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_steps

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        self.epoch += 1
        order = np.concatenate([rng.permutation(self.n) for _ in range(-(-self.num_steps * self.batch_size // self.n))])
        for step in range(self.num_steps):
            yield order[step * self.batch_size : (step + 1) * self.batch_size].tolist()


def training_batches(partition: Partition, config: dict, seed: int, balanced: bool, num_classes: int) -> Batches:
    """The training loader: ``per_class`` images of every known class per step (or shuffled)."""
    steps = config["steps_per_epoch"]
    if balanced:
        sampler = BalancedBatchSampler(partition.labels, int(config["per_class"]), seed, steps)
    else:
        sampler = ShuffledSampler(len(partition), int(config["per_class"]) * num_classes, seed, steps)
    return Batches(partition, sampler)


def ordered_batches(partition: Partition, batch_size: int) -> Batches:
    """Every image of ``partition`` once, in order."""
    return Batches(partition, SequentialSampler(len(partition), batch_size))
