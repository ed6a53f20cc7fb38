"""``osma-bench verify-data``: check a stored dataset against its card and the format contract.

Every problem is collected (not just the first): checksums of shards and ``splits.h5``, the
schema of every file, image counts, index and label ranges, per-class counts against the card,
``out`` = seed + arch + dataset, no image content (SHA-256) in two partitions of one split, and
the content hash.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import numpy as np

from osma_bench.data.card import split_class_lists, validate_card
from osma_bench.data.store import CARD_FILE
from osma_bench.errors import OsmaError
from osma_bench.io import read_json, sha256_file
from osma_bench.protocol import ALL_PARTITIONS, KNOWN_PARTITIONS, OUT_PARTITIONS, UNKNOWN_GROUPS

SHARD_COLUMNS = {
    "class_id": "int32", "sha256": "|S64", "orig_format": "|S8", "orig_width": "int32",
    "orig_height": "int32", "unseen_real": "bool",
}


def verify_dataset(root: str | os.PathLike, content_hash: bool = True) -> list[str]:
    """Return every problem found in the dataset at ``root`` (an empty list means OK).

    ``content_hash=False`` skips recomputing the content hash (which reads every pixel; the shard
    checksums already cover the bytes).
    """
    root = Path(root)
    problems: list[str] = []
    card_path = root / CARD_FILE
    if not card_path.is_file():
        return [f"{root}: not a dataset folder (no {CARD_FILE}; build one with osma-bench build-data)"]
    try:
        card = validate_card(read_json(card_path), card_path)
    except OsmaError as exc:
        return [str(exc)]

    size = int(card["image_size"])
    num_classes = len(card["classes"])
    class_ids: list[np.ndarray] = []
    shas: list[np.ndarray] = []
    total = 0
    for shard in card["shards"]:
        path = root / shard["file"]
        if not path.is_file():
            problems.append(f"{path}: shard file missing")
            continue
        if sha256_file(path) != shard["sha256"]:
            problems.append(f"{path}: SHA-256 differs from the card (file changed or corrupt)")
        try:
            with h5py.File(path, "r") as fh:
                n = _check_shard(fh, path, size, num_classes, int(shard["num_images"]), problems)
                class_ids.append(fh["class_id"][:] if "class_id" in fh else np.zeros(n, np.int32))
                shas.append(fh["sha256"][:] if "sha256" in fh else np.zeros(n, "S64"))
        except OSError as exc:
            problems.append(f"{path}: cannot be read as HDF5 ({exc})")
            continue
        total += int(shard["num_images"])
    if total != card["num_images"]:
        problems.append(f"{card_path}: num_images {card['num_images']} but the shards hold {total}")
    all_sha = np.concatenate(shas) if shas else np.zeros(0, "S64")
    all_cls = np.concatenate(class_ids) if class_ids else np.zeros(0, np.int32)

    splits = _check_splits(root, card, total, all_sha, problems)
    if content_hash and not problems and splits is not None:
        digest = _content_hash(root, card, all_cls, splits)
        if digest != card["content_sha256"]:
            problems.append(f"{card_path}: content_sha256 differs from the recomputed content hash")
    return problems


def _check_shard(fh: h5py.File, path: Path, size: int, num_classes: int, expected: int,
                 problems: list[str]) -> int:
    images = fh.get("images")
    if images is None:
        problems.append(f"{path}: no 'images' dataset")
        return 0
    n = images.shape[0]
    if images.dtype != np.uint8 or images.shape[1:] != (size, size, 3):
        problems.append(f"{path}: images are {images.dtype} {images.shape}, expected uint8 (N, {size}, {size}, 3)")
    if n != expected:
        problems.append(f"{path}: holds {n} images, the card says {expected}")
    for key, dtype in SHARD_COLUMNS.items():
        ds = fh.get(key)
        if ds is None:
            problems.append(f"{path}: no {key!r} dataset")
        elif ds.shape != (n,) or ds.dtype != np.dtype(dtype):
            problems.append(f"{path}: {key!r} is {ds.dtype} {ds.shape}, expected {dtype} ({n},)")
    if "source_path" not in fh or fh["source_path"].shape != (n,):
        problems.append(f"{path}: 'source_path' missing or of the wrong length")
    if "class_id" in fh and n:
        cid = fh["class_id"][:]
        if cid.min() < 0 or cid.max() >= num_classes:
            problems.append(f"{path}: class_id outside 0..{num_classes - 1}")
    return n


def _check_splits(root: Path, card: dict, total: int, all_sha: np.ndarray,
                  problems: list[str]) -> dict | None:
    info = card["splits_file"]
    path = root / info["file"]
    if not path.is_file():
        problems.append(f"{path}: splits file missing")
        return None
    if sha256_file(path) != info["sha256"]:
        problems.append(f"{path}: SHA-256 differs from the card (file changed or corrupt)")
    splits: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        problems.append(f"{path}: cannot be read as HDF5 ({exc})")
        return None
    with fh:
        file_splits = {int(name[5:]) for name in fh.keys() if name.startswith("split") and name[5:].isdigit()}
        card_splits = {int(k) for k in card["splits"]}
        for k in sorted(file_splits ^ card_splits):
            problems.append(f"{path}: split {k} is in {'the file' if k in file_splits else 'the card'} only")
        for k in sorted(file_splits & card_splits):
            splits[k] = _check_one_split(fh[f"split{k}"], k, card["splits"][str(k)], total, all_sha, path, problems)
    return splits


def _check_one_split(grp: h5py.Group, k: int, meta: dict, total: int, all_sha: np.ndarray, path: Path,
                     problems: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    where = f"{path} split{k}"
    try:
        known, unknown = split_class_lists(grp.attrs, path, k)
    except OsmaError as exc:
        problems.append(str(exc))
        return {}
    if known != meta["known_classes"] or unknown != {g: meta["unknown"].get(g, []) for g in UNKNOWN_GROUPS}:
        problems.append(f"{where}: class lists differ from the card")
    names = {p: known for p in KNOWN_PARTITIONS}
    names.update({f"out_{g}": unknown[g] for g in UNKNOWN_GROUPS})
    names["out"] = [c for g in UNKNOWN_GROUPS for c in unknown[g]]
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for p in ALL_PARTITIONS:
        if p not in grp or "index" not in grp[p] or "label" not in grp[p]:
            problems.append(f"{where}: partition {p!r} missing or without index/label")
            continue
        index, label = grp[p]["index"][:], grp[p]["label"][:]
        if index.dtype != np.int64 or label.dtype != np.int64 or index.shape != label.shape or index.ndim != 1:
            problems.append(f"{where} {p}: index/label must be int64 vectors of equal length")
            continue
        if len(index) and (index.min() < 0 or index.max() >= total):
            problems.append(f"{where} {p}: image index outside 0..{total - 1}")
            continue
        if len(label) and (label.min() < 0 or label.max() >= len(names[p])):
            problems.append(f"{where} {p}: label outside 0..{len(names[p]) - 1}")
            continue
        parts[p] = (index, label)
        values, freq = np.unique(label, return_counts=True)
        counts = {names[p][int(v)]: int(f) for v, f in zip(values, freq, strict=True)}
        if counts != meta.get("counts", {}).get(p):
            problems.append(f"{where} {p}: per-class counts differ from the card")
    if all(f"out_{g}" in parts for g in UNKNOWN_GROUPS) and "out" in parts:
        offsets = np.cumsum([0] + [len(unknown[g]) for g in UNKNOWN_GROUPS])
        expect_idx = np.concatenate([parts[f"out_{g}"][0] for g in UNKNOWN_GROUPS])
        expect_lab = np.concatenate([parts[f"out_{g}"][1] + offsets[i] for i, g in enumerate(UNKNOWN_GROUPS)])
        got = sorted(zip(parts["out"][0].tolist(), parts["out"][1].tolist(), strict=True))
        if got != sorted(zip(expect_idx.tolist(), expect_lab.tolist(), strict=True)):
            problems.append(f"{where} out: not the union of out_seed, out_arch and out_dataset")
    if len(all_sha) == total:
        problems.extend(_shared_content(parts, all_sha, where))
    return parts


def _shared_content(parts: dict[str, tuple[np.ndarray, np.ndarray]], all_sha: np.ndarray, where: str) -> list[str]:
    """Problems for image content that appears in two partitions of one split."""
    owner: dict[bytes, str] = {}
    clashes: dict[tuple[str, str], int] = {}
    for p in KNOWN_PARTITIONS + OUT_PARTITIONS:
        if p not in parts:
            continue
        for sha in set(all_sha[parts[p][0]].tolist()):
            first = owner.setdefault(sha, p)
            if first != p:
                clashes[(first, p)] = clashes.get((first, p), 0) + 1
    return [f"{where}: {n} image(s) with the same content (SHA-256) in both {a} and {b}"
            for (a, b), n in sorted(clashes.items())]


def _content_hash(root: Path, card: dict, class_ids: np.ndarray, splits: dict) -> str:
    digest = hashlib.sha256()
    for shard in card["shards"]:
        with h5py.File(root / shard["file"], "r") as fh:
            images = fh["images"]
            for start in range(0, images.shape[0], 512):
                digest.update(np.ascontiguousarray(images[start : start + 512]).tobytes())
    digest.update(class_ids.astype("<i4").tobytes())
    for k in sorted(splits):
        for p in sorted(ALL_PARTITIONS):
            index, label = splits[k][p]
            digest.update(index.astype("<i8").tobytes())
            digest.update(label.astype("<i8").tobytes())
    return digest.hexdigest()
