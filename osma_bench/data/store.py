"""Write a dataset in the on-disk format of docs/CONTRACTS.md section 1.

`DatasetWriter` is the one place that creates image shards, ``splits.h5`` and the card. Builders
(POSE annotations, custom manifests, the embedded benchmark) hand it preprocessed uint8 images
and their metadata; it writes into ``<out>.partial/`` and renames that folder to ``<out>/`` once
everything is on disk, so an interrupted build never leaves a dataset that looks complete.

Resuming: shards are closed one at a time (written as ``images-NNNNN.h5.tmp`` and renamed when
full). ``progress.json`` inside the partial folder lists the closed shards with their SHA-256
and a fingerprint of the build plan; ``DatasetWriter(..., resume=True)`` keeps them, drops the
half-written shard and reports in ``num_images`` how many images are already stored, so the caller
continues from there. The result is byte-identical in content to an uninterrupted build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from osma_bench.errors import OsmaError
from osma_bench.io import disk_full_error, ensure_room, is_disk_full, sha256_file, write_json, write_text
from osma_bench.protocol import ALL_PARTITIONS, KNOWN_PARTITIONS, UNKNOWN_GROUPS
from osma_bench.validate import safe_name

SCHEMA_VERSION = 1
CARD_FILE = "dataset.json"
SPLITS_FILE = "splits.h5"
PROGRESS_FILE = "progress.json"
#: Written into ``<out>.partial`` when a build creates it: only a folder holding it is ever deleted.
PARTIAL_MARKER = ".osma-bench-partial"
SKIPPED_CSV = "skipped.csv"
CLASS_KEYS = ("name", "real", "architecture", "seed", "training_data", "source")
STR_DTYPE = h5py.string_dtype("utf-8")
#: Free space kept beyond a batch's bytes before HDF5 may write it (metadata, the card, splits.h5).
ROOM_MARGIN = 4 * 2**20


def shard_name(i: int) -> str:
    """File name of shard ``i``."""
    return f"images-{i:05d}.h5"


def partial_dir(out_dir: str | os.PathLike) -> Path:
    """The folder a build of ``out_dir`` writes into before its final rename."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".partial")


def tool_version() -> str:
    """Version string of the installed package (``unknown`` when not installed)."""
    try:
        from importlib.metadata import version

        return version("osma-bench")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "unknown"


def normalise_classes(classes: list[dict]) -> list[dict]:
    """Check a class list and fill the card's class keys (missing ones become None)."""
    out, seen = [], set()
    for i, cls in enumerate(classes):
        if not isinstance(cls, dict) or not cls.get("name"):
            raise OsmaError(f"class #{i}: needs a 'name'")
        name = str(cls["name"])
        if name in seen:
            raise OsmaError(f"class {name!r} is listed twice")
        seen.add(name)
        entry = {k: cls.get(k) for k in CLASS_KEYS}
        entry["name"] = name
        entry["real"] = bool(cls.get("real", False))
        entry.update({k: v for k, v in cls.items() if k not in CLASS_KEYS})
        out.append(entry)
    if not out:
        raise OsmaError("a dataset needs at least one class")
    return out


@dataclass
class _Split:
    known_classes: list[str]
    unknown: dict[str, list[str]]
    partitions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


class DatasetWriter:
    """Incrementally write a dataset (image shards, splits, card) and publish it atomically.

    Args:
        out_dir: final dataset folder (``datasets/<name>``); the build happens in
            ``<out_dir>.partial`` until :meth:`finalize`.
        name: dataset name for the card.
        image_size: side of the stored square images.
        classes: global class list, dicts with ``name``, ``real``, ``architecture``, ``seed``,
            ``training_data``, ``source`` (extra keys are kept).
        shard_size: images per shard file.
        build_info: recorded under the card's ``build`` (tool version and creation time added).
        resume: keep the closed shards of an earlier interrupted build with the same
            ``plan_fingerprint`` (``num_images`` then says where to continue).
        preprocessing: the card's ``preprocessing`` section.
        overwrite: allow :meth:`finalize` to replace an existing complete dataset.
        plan_fingerprint: any string identifying the build inputs; a resume with a different
            fingerprint is refused.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        name: str,
        image_size: int,
        classes: list[dict],
        shard_size: int = 10000,
        build_info: dict | None = None,
        resume: bool = False,
        *,
        preprocessing: dict | None = None,
        overwrite: bool = False,
        plan_fingerprint: str = "",
    ) -> None:
        if shard_size < 1:
            raise OsmaError(f"shard_size must be at least 1, got {shard_size}")
        if image_size < 1:
            raise OsmaError(f"image_size must be at least 1, got {image_size}")
        self.out_dir = Path(out_dir)
        self.work_dir = partial_dir(self.out_dir)
        self.name = safe_name(name, "dataset name")  # the card's name becomes a folder of every run
        self.image_size = int(image_size)
        self.classes = normalise_classes(classes)
        self.shard_size = int(shard_size)
        self.build_info = dict(build_info or {})
        self.preprocessing = preprocessing
        self.overwrite = overwrite
        self.plan_fingerprint = plan_fingerprint
        self._check_target()

        self._shards: list[dict] = []  # closed shards: file, num_images, sha256
        self._class_ids: list[np.ndarray] = []
        self._sha: list[np.ndarray] = []
        self.progress_state: dict = {}  # builder state saved with each closed shard
        self.resumed_state: dict | None = None  # the state of the last closed shard after a resume
        self._pixel_hash = hashlib.sha256()
        self._open: h5py.File | None = None
        self._open_count = 0
        self._splits: dict[int, _Split] = {}
        self._finalized = False

        if self.work_dir.exists() and not self._made_by_us(self.work_dir):
            raise OsmaError(f"{self.work_dir}: exists and was not made by an osma-bench build (no {PARTIAL_MARKER}); "
                            "not deleting it: move it away or choose another --out")
        if resume and (self.work_dir / PROGRESS_FILE).is_file():
            self._resume()
        else:
            if self.work_dir.exists():
                shutil.rmtree(self.work_dir)
            self.work_dir.mkdir(parents=True)
            (self.work_dir / PARTIAL_MARKER).write_text("a dataset build in progress (osma-bench); safe to delete\n")
            self._save_progress()

    @staticmethod
    def _made_by_us(work_dir: Path) -> bool:
        """Whether ``work_dir`` is a partial folder of an osma-bench build (its marker, or the
        progress file of builds from before the marker), or an empty folder."""
        if not work_dir.is_dir():
            return False
        return (work_dir / PARTIAL_MARKER).is_file() or (work_dir / PROGRESS_FILE).is_file() or not any(
            work_dir.iterdir())

    # ------------------------------------------------------------------ state
    @property
    def num_images(self) -> int:
        """Images stored so far (after a resume: those kept from the interrupted build)."""
        return sum(s["num_images"] for s in self._shards) + self._open_count

    @property
    def kept_images(self) -> int:
        """Images in closed shards: what a ``--resume`` keeps (the open shard is written again)."""
        return sum(s["num_images"] for s in self._shards)

    def sha256_column(self) -> np.ndarray:
        """The ``sha256`` column (``S64``) of every image stored so far, in global index order."""
        return np.concatenate(self._sha) if self._sha else np.zeros(0, "S64")

    def _check_target(self) -> None:
        if (self.out_dir / CARD_FILE).is_file() and not self.overwrite:
            raise OsmaError(
                f"{self.out_dir}: a complete dataset is already there; choose another --out or "
                "pass --overwrite"
            )
        if self.out_dir.exists() and not (self.out_dir / CARD_FILE).is_file() and any(self.out_dir.iterdir()):
            if not self.overwrite:
                raise OsmaError(
                    f"{self.out_dir}: folder exists and is not a dataset; choose another --out or "
                    "pass --overwrite"
                )

    def _save_progress(self) -> None:
        write_json(
            self.work_dir / PROGRESS_FILE,
            {
                "plan_fingerprint": self.plan_fingerprint,
                "image_size": self.image_size,
                "shard_size": self.shard_size,
                "num_classes": len(self.classes),
                "shards": self._shards,
                "state": self.progress_state,
            },
        )

    def _resume(self) -> None:
        progress = json.loads((self.work_dir / PROGRESS_FILE).read_text())
        same = (
            progress.get("plan_fingerprint") == self.plan_fingerprint
            and progress.get("image_size") == self.image_size
            and progress.get("shard_size") == self.shard_size
            and progress.get("num_classes") == len(self.classes)
        )
        if not same:
            raise OsmaError(
                f"{self.work_dir}: the interrupted build used other inputs or settings; rerun "
                "without --resume to start clean"
            )
        kept = []
        intact = all((self.work_dir / s["file"]).is_file()
                     and sha256_file(self.work_dir / s["file"]) == s["sha256"] for s in progress["shards"])
        for shard in progress["shards"] if intact else []:
            path = self.work_dir / shard["file"]
            with h5py.File(path, "r") as fh:
                self._class_ids.append(fh["class_id"][:])
                self._sha.append(fh["sha256"][:])
                images = fh["images"]
                for start in range(0, images.shape[0], 256):
                    self._pixel_hash.update(np.ascontiguousarray(images[start : start + 256]).tobytes())
            kept.append(shard)
        self._shards = kept
        self.resumed_state = progress.get("state", {}) if kept else {}
        self.progress_state = dict(self.resumed_state)
        keep = {s["file"] for s in kept} | {PROGRESS_FILE, PARTIAL_MARKER}
        for path in self.work_dir.iterdir():
            if path.name not in keep:
                path.unlink() if path.is_file() else shutil.rmtree(path)
        self._save_progress()

    # ----------------------------------------------------------------- images
    def _open_shard(self) -> h5py.File:
        index = len(self._shards)
        path = self.work_dir / (shard_name(index) + ".tmp")
        fh = h5py.File(path, "w")
        size = self.image_size
        fh.create_dataset(
            "images", shape=(0, size, size, 3), maxshape=(self.shard_size, size, size, 3),
            dtype=np.uint8, chunks=(1, size, size, 3),
        )
        for key, dtype in (
            ("class_id", np.int32), ("sha256", "S64"), ("source_path", STR_DTYPE), ("orig_format", "S8"),
            ("orig_width", np.int32), ("orig_height", np.int32), ("unseen_real", np.bool_),
        ):
            fh.create_dataset(key, shape=(0,), maxshape=(self.shard_size,), dtype=dtype,
                              chunks=(min(self.shard_size, 4096),))
        self._open_count = 0
        return fh

    def _close_shard(self) -> None:
        assert self._open is not None
        tmp = Path(self._open.filename)
        self._open.flush()
        self._open.close()
        self._open = None
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        final = tmp.with_name(tmp.name[: -len(".tmp")])
        os.replace(tmp, final)
        self._shards.append({"file": final.name, "num_images": self._open_count, "sha256": sha256_file(final)})
        self._open_count = 0
        self._save_progress()

    def add_images(
        self,
        images: np.ndarray,
        class_id: int | np.ndarray,
        sha256: list | np.ndarray | None = None,
        source_path: list[str] | None = None,
        orig_format: list[str] | str | None = None,
        orig_width: int | np.ndarray | None = None,
        orig_height: int | np.ndarray | None = None,
        unseen_real: bool | np.ndarray = False,
    ) -> np.ndarray:
        """Append images (uint8 (N, H, W, 3)) with their columns; return their global indices.

        ``sha256`` defaults to the SHA-256 of each image's stored pixels, ``source_path`` to
        ``gen/<index>``, ``orig_format`` to ``GEN``, the original size to the stored size.
        Scalars are broadcast to all N images.
        """
        if self._finalized:
            raise OsmaError("dataset already finalized")
        images = np.asarray(images)
        size = self.image_size
        if images.ndim != 4 or images.shape[1:] != (size, size, 3) or images.dtype != np.uint8:
            raise OsmaError(
                f"images must be uint8 (N, {size}, {size}, 3), got {images.dtype} {images.shape}"
            )
        n = images.shape[0]
        start = self.num_images
        class_id = np.broadcast_to(np.asarray(class_id, dtype=np.int64), (n,)).astype(np.int32)
        if n and (class_id.min() < 0 or class_id.max() >= len(self.classes)):
            raise OsmaError(f"class_id outside 0..{len(self.classes) - 1}")
        if sha256 is None:
            sha256 = [hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest() for img in images]
        sha = np.asarray([s.decode() if isinstance(s, bytes) else str(s) for s in sha256], dtype="S64")
        if source_path is None:
            source_path = [f"gen/{start + i:08d}" for i in range(n)]
        if orig_format is None or isinstance(orig_format, str):
            orig_format = [orig_format or "GEN"] * n
        fmt = np.asarray([str(f)[:8] for f in orig_format], dtype="S8")
        width = np.broadcast_to(np.asarray(size if orig_width is None else orig_width, np.int32), (n,))
        height = np.broadcast_to(np.asarray(size if orig_height is None else orig_height, np.int32), (n,))
        unseen = np.broadcast_to(np.asarray(unseen_real, dtype=np.bool_), (n,))
        if len(sha) != n or len(source_path) != n or len(fmt) != n:
            raise OsmaError("every per-image column needs one entry per image")

        columns = {
            "images": images, "class_id": class_id, "sha256": sha, "source_path": list(source_path),
            "orig_format": fmt, "orig_width": width, "orig_height": height, "unseen_real": unseen,
        }
        try:
            return self._append(columns, images, class_id, sha, start, n)
        except OsmaError:
            raise
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            raise self._disk_full(exc) from None

    def _append(self, columns: dict, images: np.ndarray, class_id: np.ndarray, sha: np.ndarray, start: int,
                n: int) -> np.ndarray:
        done = 0
        while done < n:
            if self._open is None:
                self._open = self._open_shard()
            take = min(n - done, self.shard_size - self._open_count)
            self._ensure_room(take * (images[0].nbytes + 200))
            lo, hi = self._open_count, self._open_count + take
            for key, values in columns.items():
                ds = self._open[key]
                ds.resize(hi, axis=0)
                ds[lo:hi] = values[done : done + take]
            del ds
            self._open.flush()  # HDF5 writes lazily; a write error must surface here, not in a destructor
            block = np.ascontiguousarray(images[done : done + take])
            self._pixel_hash.update(block.tobytes())
            self._class_ids.append(class_id[done : done + take].copy())
            self._sha.append(sha[done : done + take].copy())
            self._open_count = hi
            done += take
            if self._open_count == self.shard_size:
                self._close_shard()
        return np.arange(start, start + n, dtype=np.int64)

    # ----------------------------------------------------------------- splits
    def add_split(
        self,
        k: int,
        known_classes: list[str],
        unknown: dict[str, list[str]],
        partitions: dict[str, tuple[np.ndarray, np.ndarray]],
    ) -> None:
        """Record protocol split ``k``: its known classes, unknown groups and partitions.

        ``partitions`` maps ``train``/``val``/``test``/``out_seed``/``out_arch``/``out_dataset``
        (and optionally ``out``) to ``(global indices, labels)``. ``out`` is computed from the
        three ``out_*`` groups when absent (labels offset into seed + arch + dataset).
        """
        k = int(k)
        if k < 1:
            raise OsmaError(f"split numbers start at 1, got {k}")
        unknown = {g: list(unknown.get(g, [])) for g in UNKNOWN_GROUPS}
        extra = set(partitions) - set(ALL_PARTITIONS)
        if extra:
            raise OsmaError(f"split {k}: unknown partition(s) {sorted(extra)}")
        parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in ALL_PARTITIONS:
            if name in partitions:
                index, label = partitions[name]
                index = np.asarray(index, dtype=np.int64).reshape(-1)
                label = np.asarray(label, dtype=np.int64).reshape(-1)
                if index.shape != label.shape:
                    raise OsmaError(f"split {k} {name}: index and label lengths differ")
            else:
                index = label = np.zeros(0, dtype=np.int64)
            parts[name] = (index, label)
        if "out" not in partitions:
            offsets = np.cumsum([0] + [len(unknown[g]) for g in UNKNOWN_GROUPS])
            parts["out"] = (
                np.concatenate([parts[f"out_{g}"][0] for g in UNKNOWN_GROUPS]),
                np.concatenate([parts[f"out_{g}"][1] + offsets[i] for i, g in enumerate(UNKNOWN_GROUPS)]),
            )
        names = {c["name"] for c in self.classes}
        for cls in list(known_classes) + [c for g in UNKNOWN_GROUPS for c in unknown[g]]:
            if cls not in names:
                raise OsmaError(f"split {k}: class {cls!r} is not in the dataset's class list")
        for name, (_, label) in parts.items():
            size = len(self._label_names(known_classes, unknown, name))
            if len(label) and (label.min() < 0 or label.max() >= size):
                raise OsmaError(f"split {k} {name}: label outside 0..{size - 1}")
        self._splits[k] = _Split(list(known_classes), unknown, parts)

    @staticmethod
    def _label_names(known: list[str], unknown: dict[str, list[str]], partition: str) -> list[str]:
        if partition in KNOWN_PARTITIONS:
            return list(known)
        if partition == "out":
            return [c for g in UNKNOWN_GROUPS for c in unknown[g]]
        return list(unknown[partition[len("out_"):]])

    # --------------------------------------------------------------- finalize
    def _write_splits(self, path: Path) -> None:
        with h5py.File(path, "w") as fh:
            for k in sorted(self._splits):
                split = self._splits[k]
                grp = fh.create_group(f"split{k}")
                grp.attrs["known_classes"] = json.dumps(split.known_classes)
                for g in UNKNOWN_GROUPS:
                    grp.attrs[f"unknown_{g}"] = json.dumps(split.unknown[g])
                for name in ALL_PARTITIONS:
                    index, label = split.partitions[name]
                    sub = grp.create_group(name)
                    sub.create_dataset("index", data=index.astype(np.int64))
                    sub.create_dataset("label", data=label.astype(np.int64))

    def content_sha256(self) -> str:
        """The dataset's content hash (contract section 1), from what was added so far."""
        digest = self._pixel_hash.copy()
        class_ids = np.concatenate(self._class_ids) if self._class_ids else np.zeros(0, np.int32)
        digest.update(class_ids.astype("<i4").tobytes())
        for k in sorted(self._splits):
            for name in sorted(ALL_PARTITIONS):
                index, label = self._splits[k].partitions[name]
                digest.update(index.astype("<i8").tobytes())
                digest.update(label.astype("<i8").tobytes())
        return digest.hexdigest()

    def finalize(self, extra_card: dict | None = None, skipped: list[dict] | None = None) -> Path:
        """Write ``splits.h5`` and the card, then rename the partial folder to the dataset folder.

        ``extra_card`` adds builder-specific card sections (or overrides defaults);
        ``skipped`` (``[{"path", "reason"}]``) goes to the card and ``skipped.csv``.
        Returns the dataset folder.
        """
        if self._finalized:
            raise OsmaError("dataset already finalized")
        try:
            return self._finalize(extra_card, skipped)
        except OsmaError:
            raise
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            raise self._disk_full(exc) from None

    def _finalize(self, extra_card: dict | None, skipped: list[dict] | None) -> Path:
        if self._open is not None and self._open_count:
            self._close_shard()
        elif self._open is not None:
            tmp = Path(self._open.filename)
            self._open.close()
            self._open = None
            tmp.unlink()
        total = self.num_images
        for k, split in self._splits.items():
            for name, (index, _) in split.partitions.items():
                if len(index) and (index.min() < 0 or index.max() >= total):
                    raise OsmaError(f"split {k} {name}: image index outside 0..{total - 1}")
        self._ensure_room(sum(16 * len(i) for sp in self._splits.values() for i, _ in sp.partitions.values()))
        self._write_splits(self.work_dir / SPLITS_FILE)
        skipped = list(skipped or [])
        if skipped:
            lines = ["path,reason"] + [f"{_csv(s['path'])},{_csv(s['reason'])}" for s in skipped]
            write_text(self.work_dir / SKIPPED_CSV, "\n".join(lines) + "\n")
        card = self._card(skipped)
        card.update(extra_card or {})
        write_json(self.work_dir / CARD_FILE, card)
        (self.work_dir / PROGRESS_FILE).unlink()
        (self.work_dir / PARTIAL_MARKER).unlink(missing_ok=True)
        self._publish()
        self._finalized = True
        return self.out_dir

    def _card(self, skipped: list[dict]) -> dict[str, Any]:
        splits = {}
        for k in sorted(self._splits):
            split = self._splits[k]
            counts = {}
            for name in ALL_PARTITIONS:
                names = self._label_names(split.known_classes, split.unknown, name)
                values, freq = np.unique(split.partitions[name][1], return_counts=True)
                counts[name] = {names[int(v)]: int(f) for v, f in zip(values, freq, strict=True)}
            splits[str(k)] = {"known_classes": split.known_classes, "unknown": split.unknown, "counts": counts}
        build = {"tool_version": tool_version(), "created": datetime.now(UTC).isoformat(timespec="seconds")}
        build.update(self.build_info)
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "image_size": self.image_size,
            "preprocessing": self.preprocessing,
            "classes": self.classes,
            "splits": splits,
            "num_images": self.num_images,
            "shards": list(self._shards),
            "splits_file": {"file": SPLITS_FILE, "sha256": sha256_file(self.work_dir / SPLITS_FILE)},
            "content_sha256": self.content_sha256(),
            "build": build,
            "skipped": skipped,
        }

    def _publish(self) -> None:
        old = None
        if self.out_dir.exists():
            if not self.overwrite:
                raise OsmaError(f"{self.out_dir}: appeared during the build; not overwriting it")
            old = self.out_dir.with_name(self.out_dir.name + ".old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(self.out_dir, old)
        os.replace(self.work_dir, self.out_dir)
        _fsync_dir(self.out_dir.parent)
        if old is not None:
            shutil.rmtree(old)

    def abort(self) -> None:
        """Close an open shard file (the partial folder stays for a later --resume)."""
        if self._open is not None:
            self._drop_open_shard(delete=False)

    def _drop_open_shard(self, delete: bool) -> None:
        """Close the half-written shard even when its file cannot be flushed (a full disk); ``delete``
        also removes it (it is never kept by a resume anyway)."""
        fh, self._open = self._open, None
        if fh is None:
            return
        tmp = Path(fh.filename)
        try:
            fh.close()
        except Exception:  # noqa: BLE001 - flushing to a full disk fails; the handle must go regardless
            try:
                fh.id.close()  # h5py keeps the file ID otherwise, and tears it down badly at exit
            except Exception:  # noqa: BLE001
                pass
        if delete:
            tmp.unlink(missing_ok=True)

    def _ensure_room(self, nbytes: int) -> None:
        """Refuse (cleanly) before HDF5 writes ``nbytes`` into a file system without room for them.

        HDF5 writes cached chunks lazily and a write that fails inside its caches can bring the
        interpreter down; checking the free space before each batch keeps that from happening.
        """
        try:
            ensure_room(self.work_dir, nbytes + ROOM_MARGIN)
        except OsmaError:
            raise self._disk_full(OSError(28, "No space left on device"), nbytes + ROOM_MARGIN) from None

    def _disk_full(self, exc: BaseException, needed: int | None = None) -> OsmaError:
        """Clean up after a full disk: the half-written shard goes, and so does the partial folder
        when it holds no closed shard (else those stay for ``--resume``); the one-line error."""
        self._drop_open_shard(delete=True)
        if not self._shards:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            removed = f"removed {self.work_dir}"
        else:
            removed = (f"removed the half-written shard; {len(self._shards)} complete shard(s) stay in "
                       f"{self.work_dir} for --resume (delete that folder to free their space)")
        return disk_full_error(self.work_dir, needed, removed)


def _csv(value: Any) -> str:
    text = str(value)
    if any(c in text for c in ',"\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
