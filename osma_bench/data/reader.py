"""Read a dataset (docs/CONTRACTS.md section 1): card, splits, a torch Dataset and a sampler."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from osma_bench.data.card import split_class_lists, validate_card
from osma_bench.data.store import CARD_FILE
from osma_bench.errors import OsmaError
from osma_bench.io import read_json
from osma_bench.protocol import ALL_PARTITIONS, KNOWN_PARTITIONS, UNKNOWN_GROUPS


def load_card(root: str | os.PathLike) -> dict:
    """Read ``<root>/dataset.json`` and check it against the card schema (:mod:`osma_bench.data.card`)."""
    root = Path(root)
    if not root.is_dir():
        raise OsmaError(f"{root}: dataset folder not found")
    if not (root / CARD_FILE).is_file():
        raise OsmaError(f"{root}: not a dataset folder (no {CARD_FILE}; build one with osma-bench build-data)")
    return validate_card(read_json(root / CARD_FILE), root / CARD_FILE)


@dataclass
class SplitInfo:
    """One protocol split: class lists and every partition's ``(index, label)`` arrays."""

    k: int
    known_classes: list[str]
    unknown: dict[str, list[str]]
    partitions: dict[str, tuple[np.ndarray, np.ndarray]]

    def class_names(self, partition: str) -> list[str]:
        """Names the labels of ``partition`` index into."""
        if partition in KNOWN_PARTITIONS:
            return list(self.known_classes)
        if partition == "out":
            return [c for g in UNKNOWN_GROUPS for c in self.unknown[g]]
        if partition.startswith("out_") and partition[4:] in UNKNOWN_GROUPS:
            return list(self.unknown[partition[4:]])
        raise OsmaError(f"unknown partition {partition!r}; choose one of {', '.join(ALL_PARTITIONS)}")


def read_split(root: str | os.PathLike, k: int) -> SplitInfo:
    """Read split ``k`` from ``<root>/splits.h5``."""
    root = Path(root)
    path = root / "splits.h5"
    if not path.is_file():
        raise OsmaError(f"{path}: file not found")
    with h5py.File(path, "r") as fh:
        name = f"split{int(k)}"
        if name not in fh:
            have = sorted(fh.keys(), key=lambda s: int(s[5:]) if s[5:].isdigit() else 0)
            raise OsmaError(f"{root}: no split {k} (the dataset has {', '.join(have) or 'none'})")
        grp = fh[name]
        known, unknown = split_class_lists(grp.attrs, path, int(k))
        parts = {
            p: (grp[p]["index"][:].astype(np.int64), grp[p]["label"][:].astype(np.int64))
            for p in grp.keys()
        }
    return SplitInfo(int(k), known, unknown, parts)


class ShardIndex:
    """Maps global image indices to (shard file, local index) and keeps lazy per-process handles.

    File handles are opened on first use in the process that uses them (a DataLoader worker opens
    its own) and are never pickled.
    """

    def __init__(self, root: Path, card: dict) -> None:
        self.root = root
        self.files = [s["file"] for s in card["shards"]]
        sizes = [int(s["num_images"]) for s in card["shards"]]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._handles: dict[int, h5py.File] = {}
        self._pid = os.getpid()
        self._datasets: dict[int, h5py.Dataset] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handles"] = {}
        state["_datasets"] = {}
        return state

    def locate(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shard number and local position of each global index."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= self.starts[-1]):
            raise OsmaError(f"{self.root}: image index outside 0..{self.starts[-1] - 1}")
        shard = np.searchsorted(self.starts, index, side="right") - 1
        return shard, index - self.starts[shard]

    def handle(self, shard: int) -> h5py.File:
        """Open (once per process) and return the h5 file of ``shard``."""
        if self._pid != os.getpid():
            self._handles, self._datasets = {}, {}
            self._pid = os.getpid()
        fh = self._handles.get(shard)
        if fh is None:
            path = self.root / self.files[shard]
            if not path.is_file():
                raise OsmaError(f"{path}: shard file not found")
            fh = h5py.File(path, "r")
            self._handles[shard] = fh
        return fh

    def read_images(self, index: np.ndarray) -> np.ndarray:
        """Images (N, H, W, 3) uint8 for global indices, read shard by shard in sorted runs."""
        index = np.asarray(index, dtype=np.int64)
        shard, local = self.locate(index)
        out = None
        order = np.lexsort((local, shard))
        pos = 0
        while pos < len(order):
            s = shard[order[pos]]
            end = pos
            while end < len(order) and shard[order[end]] == s:
                end += 1
            ds = self.images_dataset(int(s))
            if out is None:
                out = np.empty((len(index),) + ds.shape[1:], dtype=np.uint8)
            idx = order[pos:end]
            loc = local[idx]
            run_start = 0
            for cut in list(np.nonzero(np.diff(loc) != 1)[0] + 1) + [len(loc)]:
                lo, hi = int(loc[run_start]), int(loc[cut - 1]) + 1
                block = ds[lo:hi]
                out[idx[run_start:cut]] = block[loc[run_start:cut] - lo]
                run_start = cut
            pos = end
        if out is None:
            return np.zeros((0, 0, 0, 3), dtype=np.uint8)
        return out

    def read_column(self, name: str, index: np.ndarray) -> np.ndarray:
        """A per-image column (``sha256``, ``class_id``, ...) for global indices."""
        shard, local = self.locate(index)
        columns = {}
        for s in np.unique(shard):
            columns[int(s)] = self.handle(int(s))[name][:]
        if not len(index):
            return np.zeros(0)
        return np.asarray([columns[int(s)][int(i)] for s, i in zip(shard, local, strict=True)])

    def images_dataset(self, shard: int) -> h5py.Dataset:
        """The ``images`` dataset of ``shard`` (cached with the handle, per process)."""
        if self._pid == os.getpid():
            ds = self._datasets.get(shard)
            if ds is not None:
                return ds
        ds = self.handle(shard)["images"]
        self._datasets[shard] = ds
        return ds

    def read_one(self, shard: int, local: int) -> np.ndarray:
        """One image (H, W, 3) uint8; reads the raw chunk when images are stored one per chunk."""
        ds = self.images_dataset(shard)
        if ds.chunks == (1,) + ds.shape[1:] and ds.compression is None and not ds.fletcher32:
            _, raw = ds.id.read_direct_chunk((local, 0, 0, 0))
            return np.frombuffer(raw, dtype=np.uint8).reshape(ds.shape[1:])
        return ds[local]

    def close(self) -> None:
        """Close every open handle of this process."""
        for fh in self._handles.values():
            fh.close()
        self._handles, self._datasets = {}, {}


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1] (the POSE normalisation: x / 255 * 2 - 1)."""
    return images.float().div_(127.5).sub_(1.0)


class OSMADataset(Dataset):
    """A torch Dataset over one partition of one split of a stored dataset.

    ``__getitem__(i) -> (image (3, H, W) uint8 tensor or float32 in [-1, 1], label, global index)``.
    Works with ``num_workers > 0``: each worker opens its own HDF5 handles.
    """

    def __init__(self, root: str | os.PathLike, split: int, partition: str, as_float: bool = False) -> None:
        self.root = Path(root)
        self.card = load_card(self.root)
        info = read_split(self.root, split)
        self.split = int(split)
        self.partition = partition
        if partition not in info.partitions:
            raise OsmaError(f"{self.root}: split {split} has no partition {partition!r}")
        self.class_names = info.class_names(partition)
        self.indices, self.labels = info.partitions[partition]
        self.as_float = as_float
        self.image_size = int(self.card["image_size"])
        self._store = ShardIndex(self.root, self.card)
        self._shard, self._local = self._store.locate(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        pixels = self._store.read_one(int(self._shard[i]), int(self._local[i]))
        image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
        if self.as_float:
            image = to_float(image)
        return image, int(self.labels[i]), int(self.indices[i])

    def load_all(self, as_float: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image of the partition at once: ``(images (N, 3, H, W), labels (N,) int64)``."""
        pixels = self._store.read_images(self.indices)
        if not len(self.indices):
            pixels = np.zeros((0, self.image_size, self.image_size, 3), np.uint8)
        images = torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)))
        if as_float:
            images = to_float(images)
        return images, torch.from_numpy(self.labels.copy())

    def sha256(self) -> np.ndarray:
        """Content SHA-256 (``S64``) of every image of the partition, in order."""
        return self._store.read_column("sha256", self.indices)


class BalancedBatchSampler(Sampler[list[int]]):
    """Class-balanced batches as POSE trains: every step holds ``per_class`` images of each class.

    Each class is drawn without replacement from its own shuffled order, reshuffled when used up
    (small classes repeat, as POSE's ``index % len(class)``). An epoch is
    ``max class size // per_class`` steps (at least 1) unless ``num_steps`` is given. Epoch ``e``
    uses the generator seeded with ``(seed, e)``; iterating advances the epoch, ``set_epoch``
    sets it (for resumed runs).
    """

    def __init__(self, labels, per_class: int, seed: int, num_steps: int | None = None) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if per_class < 1:
            raise OsmaError(f"per_class must be at least 1, got {per_class}")
        self.classes = np.unique(labels)
        if not len(self.classes):
            raise OsmaError("BalancedBatchSampler: no labels")
        self.members = [np.nonzero(labels == c)[0] for c in self.classes]
        self.per_class = int(per_class)
        self.seed = int(seed)
        largest = max(len(m) for m in self.members)
        self.num_steps = int(num_steps) if num_steps is not None else max(1, largest // self.per_class)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` on the next iteration."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_steps

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        need = self.num_steps * self.per_class
        streams = []
        for members in self.members:
            reps = -(-need // len(members))
            streams.append(np.concatenate([members[rng.permutation(len(members))] for _ in range(reps)])[:need])
        table = np.stack(streams)  # (K, need)
        for step in range(self.num_steps):
            block = table[:, step * self.per_class : (step + 1) * self.per_class]
            yield block.T.reshape(-1).tolist()
