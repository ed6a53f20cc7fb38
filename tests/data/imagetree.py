"""Generate small image files and POSE-style annotation trees for the data tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, seed: int, size=(40, 32), mode: str = "RGB", fmt: str = "PNG") -> Path:
    """A random-ish image (distinct per seed) saved at ``path``."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    img = Image.fromarray(base, "RGB")
    if mode == "I;16":
        img = Image.fromarray(base[..., 0].astype(np.uint16) * 257)
    elif mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def bomb_png(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def write_annotations(ann_dir: Path, k: int, parts: dict[str, list[tuple[str, int]]]) -> None:
    """POSE annotation files for split ``k`` (``./dataset/...<TAB>label`` lines)."""
    names = {
        "train": f"split{k}_train/annotations/split{k}_train.txt",
        "val": f"split{k}_val/annotations/split{k}_val.txt",
        "test": f"split{k}_test/annotations/split{k}_test.txt",
        "out_seed": f"split{k}_test/annotations/split{k}_test_out_seed.txt",
        "out_arch": f"split{k}_test/annotations/split{k}_test_out_arch.txt",
        "out_dataset": f"split{k}_test/annotations/split{k}_test_out_dataset.txt",
        "out": f"split{k}_test/annotations/split{k}_test_out.txt",
    }
    for part, lines in parts.items():
        path = ann_dir / names[part]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"./{p}\t{lab}\n" for p, lab in lines))


def make_pose_tree(base: Path, protocol: dict, splits=(1,), per_class: int = 2, seed: int = 0,
                   size=(40, 32)) -> tuple[Path, Path, dict]:
    """A tiny POSE-like tree under ``base``: images for a few classes of each split and annotation
    files. Returns (root, annotation dir, {k: {part: [(path, label)]}})."""
    root = base / "pose"
    ann = root / "dataset"
    written: dict = {}
    counter = seed * 100_000
    for k in splits:
        spec = protocol["splits"][k]
        parts: dict[str, list] = {p: [] for p in ("train", "val", "test", "out_seed", "out_arch", "out_dataset")}
        for label, cls in enumerate(spec["known"][:3]):
            for part in ("train", "val", "test"):
                for j in range(per_class):
                    rel = f"dataset/OSMA/{cls}/{part}_{j}.png"
                    if not (root / rel).exists():
                        counter += 1
                        write_image(root / rel, counter, size=size)
                    parts[part].append((rel, label))
        rel = f"dataset/OSMA/real/CoCo/{k}.jpg"
        counter += 1
        write_image(root / rel, counter, size=size, fmt="JPEG")
        parts["test"].append((rel, 0))
        offsets = {}
        total = 0
        for g in ("seed", "arch", "dataset"):
            offsets[g] = total
            total += len(spec[f"unknown_{g}"])
            cls = spec[f"unknown_{g}"][1]
            for j in range(per_class):
                rel = f"dataset/OSMA/{cls}/out_{j}.png"
                if not (root / rel).exists():
                    counter += 1
                    write_image(root / rel, counter, size=size)
                parts[f"out_{g}"].append((rel, 1))
        parts["out"] = [(p, lab + offsets[g]) for g in ("seed", "arch", "dataset") for p, lab in parts[f"out_{g}"]]
        write_annotations(ann, k, parts)
        written[k] = parts
    return root, ann, written
