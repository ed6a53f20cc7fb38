"""build-data pose: counts equal the annotation lines, POSE-identical pixels, every bad input."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import numpy as np
import pytest
import torchvision.transforms as T
from PIL import Image

from osma_bench.data import OSMADataset, load_card, read_split, verify_dataset
from osma_bench.data.build import run_build
from osma_bench.data.pose import load_protocol, pose_plan
from osma_bench.data.preprocess import PreprocessConfig, load_image
from osma_bench.data.store import partial_dir
from osma_bench.errors import OsmaError

from .imagetree import bomb_png, make_pose_tree, write_annotations, write_image

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "pose-osma"
PROTOCOL = load_protocol()
CFG = PreprocessConfig(size=16, allow_upscale=True)


def pose_reference(path: Path, size: int) -> np.ndarray:
    """The POSE loader's preprocessing, written with PIL and torchvision directly."""
    img = Image.open(path).convert("RGB")
    if img.size[0] != img.size[1]:
        short = min(img.size)
        img = T.CenterCrop(size=(short, short))(img)
    img = img.resize((size, size))
    return np.asarray(img)


@pytest.mark.parametrize(
    ("size", "mode", "fmt"),
    [((37, 50), "RGB", "PNG"), ((50, 37), "RGB", "PNG"), ((129, 130), "RGBA", "PNG"), ((200, 128), "P", "PNG"),
     ((64, 64), "L", "PNG"), ((71, 40), "LA", "PNG"), ((45, 90), "CMYK", "JPEG"), ((33, 34), "RGB", "JPEG"),
     ((20, 20), "RGB", "PNG")],
)
def test_pixels_equal_pose_loader(tmp_path, size, mode, fmt):
    path = write_image(tmp_path / f"img.{fmt.lower()}", 7, size=size, mode=mode, fmt=fmt)
    for target in (32, 128):
        pixels, meta = load_image(path, PreprocessConfig(size=target, allow_upscale=True))
        np.testing.assert_array_equal(pixels, pose_reference(path, target))
    assert meta["orig_format"] == fmt and (meta["orig_width"], meta["orig_height"]) == size


def test_build_from_generated_tree(tmp_path):
    root, ann, written = make_pose_tree(tmp_path, PROTOCOL, splits=(1, 2))
    plan = pose_plan(root, ann, [1, 2], PROTOCOL, name="osma")
    out = run_build(plan, tmp_path / "osma", CFG, workers=1)
    assert verify_dataset(out) == []
    card = load_card(out)
    assert card["preprocessing"]["resize_filter"] == "BICUBIC"
    distinct = {p for k in written for lines in written[k].values() for p, _ in lines}
    assert card["num_images"] == len(distinct)
    for k, parts in written.items():
        info = read_split(out, k)
        for part, lines in parts.items():
            index, label = info.partitions[part]
            ds = OSMADataset(out, k, part)
            paths = [p.decode() if isinstance(p, bytes) else p for p in ds._store.read_column("source_path", index)]
            assert sorted(zip(paths, label.tolist(), strict=True)) == sorted(lines)
            names = info.class_names(part)
            expected = collections.Counter(names[lab] for _, lab in lines)
            assert card["splits"][str(k)]["counts"][part] == dict(expected)
    # the unseen real COCO image is real in the test and flagged unseen_real
    ds = OSMADataset(out, 1, "test")
    paths = ds._store.read_column("source_path", ds.indices)
    unseen = ds._store.read_column("unseen_real", ds.indices)
    for p, u, lab in zip(paths, unseen, ds.labels, strict=True):
        p = p.decode() if isinstance(p, bytes) else p
        assert bool(u) == ("/CoCo/" in p)
        if u:
            assert lab == 0
    # stored pixels are the POSE loader's
    image, _, _ = ds[0]
    src = root / (paths[0].decode() if isinstance(paths[0], bytes) else paths[0])
    np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), pose_reference(src, 16))


def test_two_workers_same_content(tmp_path):
    root, ann, _ = make_pose_tree(tmp_path, PROTOCOL, splits=(1,))
    plan = pose_plan(root, ann, [1], PROTOCOL)
    one = run_build(plan, tmp_path / "a", CFG, workers=1)
    two = run_build(plan, tmp_path / "b", CFG, workers=2)
    assert load_card(one)["content_sha256"] == load_card(two)["content_sha256"]


def _bad_cases(root: Path, outside: Path) -> dict[str, tuple[str, str]]:
    """rel path -> (how it is made, expected reason fragment)."""
    base = root / "dataset/OSMA/celeba_StarGAN"
    base.mkdir(parents=True, exist_ok=True)
    (base / "zero.png").write_bytes(b"")
    good = write_image(base / "good.png", 1).read_bytes()
    (base / "trunc.png").write_bytes(good[: len(good) // 2])
    jpg = write_image(base / "good.jpg", 2, fmt="JPEG").read_bytes()
    (base / "trunc.jpg").write_bytes(jpg[: len(jpg) // 2])
    (base / "notimage.png").write_text("hello, I am text\n")
    write_image(base / "deep.png", 3, mode="I;16")
    write_image(base / "small.png", 4, size=(8, 12))
    bomb_png(base / "bomb.png")
    write_image(outside / "secret.png", 5)
    return {
        "dataset/OSMA/celeba_StarGAN/missing.png": "file not found",
        "dataset/OSMA/celeba_StarGAN/zero.png": "empty file",
        "dataset/OSMA/celeba_StarGAN/trunc.png": "truncated",
        "dataset/OSMA/celeba_StarGAN/trunc.jpg": "truncated",
        "dataset/OSMA/celeba_StarGAN/notimage.png": "not an image",
        "dataset/OSMA/celeba_StarGAN/deep.png": "I;16",
        "dataset/OSMA/celeba_StarGAN/small.png": "smaller than the target size",
        "dataset/OSMA/celeba_StarGAN/bomb.png": "decompression bomb",
        "dataset/../../outside/secret.png": "escapes the image root",
    }


def test_every_bad_input_is_reported_then_skipped(tmp_path):
    root, ann, written = make_pose_tree(tmp_path, PROTOCOL, splits=(1,))
    cases = _bad_cases(root, tmp_path / "outside")
    parts = dict(written[1])
    parts["train"] = parts["train"] + [(p, 2) for p in cases]
    write_annotations(ann, 1, parts)
    train = ann / "split1_train/annotations/split1_train.txt"
    with open(train, "a") as fh:
        fh.write("./dataset/OSMA/x.png 1\n")  # malformed: no tab
        fh.write("./dataset/OSMA/y.png\t99\n")  # label outside the class list
        fh.write(f"./{parts['train'][0][0]}\t0\n")  # listed twice
    cfg = PreprocessConfig(size=16, allow_upscale=False)
    plan = pose_plan(root, ann, [1], PROTOCOL)
    with pytest.raises(OsmaError) as err:
        run_build(plan, tmp_path / "osma", cfg)
    message = str(err.value)
    for fragment in ("malformed annotation line", "label 99 outside", "listed twice",
                     "missing.png: file not found", "zero.png: empty file", "secret.png: path escapes"):
        assert fragment in message
    assert not (tmp_path / "osma").exists() and not partial_dir(tmp_path / "osma").exists()
    # the decode-time problems are all reported together too (cheap ones removed from the list)
    for rel in ("dataset/OSMA/celeba_StarGAN/missing.png", "dataset/OSMA/celeba_StarGAN/zero.png",
                "dataset/../../outside/secret.png"):
        parts["train"] = [x for x in parts["train"] if x[0] != rel]
    write_annotations(ann, 1, parts)
    with pytest.raises(OsmaError) as err:
        run_build(pose_plan(root, ann, [1], PROTOCOL), tmp_path / "osma", cfg)
    message = str(err.value)
    for rel in ("trunc.png", "trunc.jpg", "notimage.png", "deep.png", "small.png", "bomb.png"):
        line = next(x for x in message.splitlines() if rel in x)
        assert cases[f"dataset/OSMA/celeba_StarGAN/{rel}"].split()[0].lower() in line.lower(), line
    assert not (tmp_path / "osma").exists() and not partial_dir(tmp_path / "osma").exists()
    # --skip-bad: built without them, each recorded in the card and skipped.csv
    write_annotations(ann, 1, {"train": parts["train"] + [(p, 2) for p in cases]})
    out = run_build(pose_plan(root, ann, [1], PROTOCOL), tmp_path / "osma", cfg, skip_bad=True)
    assert verify_dataset(out) == []
    skipped = {s["path"]: s["reason"] for s in load_card(out)["skipped"]}
    for rel, reason in cases.items():
        assert reason.lower() in skipped[rel].lower()
    csv = (out / "skipped.csv").read_text()
    assert csv.startswith("path,reason\n") and "bomb.png" in csv
    assert load_card(out)["splits"]["1"]["counts"]["train"]["celeba_StarGAN"] == 2


def test_same_content_in_two_partitions(tmp_path):
    root, ann, written = make_pose_tree(tmp_path, PROTOCOL, splits=(1,))
    parts = dict(written[1])
    src = root / parts["train"][0][0]
    copy = root / "dataset/OSMA/copy/dup.png"
    copy.parent.mkdir(parents=True)
    shutil.copy(src, copy)
    parts["test"] = parts["test"] + [("dataset/OSMA/copy/dup.png", 0)]
    write_annotations(ann, 1, parts)
    with pytest.raises(OsmaError, match="same content"):
        run_build(pose_plan(root, ann, [1], PROTOCOL), tmp_path / "osma", CFG)
    assert not (tmp_path / "osma").exists()
    out = run_build(pose_plan(root, ann, [1], PROTOCOL), tmp_path / "osma", CFG, skip_bad=True)
    assert verify_dataset(out) == []
    assert any("same content" in s["reason"] for s in load_card(out)["skipped"])


def test_class_conflict_between_splits_and_missing_annotation(tmp_path):
    root, ann, written = make_pose_tree(tmp_path, PROTOCOL, splits=(1, 2))
    parts = dict(written[2])
    parts["train"] = [(p, 1 if lab == 0 else lab) for p, lab in parts["train"]]  # a real image relabelled
    write_annotations(ann, 2, parts)
    with pytest.raises(OsmaError, match="is celeba_ProGAN_seed1 here but real"):
        run_build(pose_plan(root, ann, [1, 2], PROTOCOL), tmp_path / "osma", CFG)
    (ann / "split1_val/annotations/split1_val.txt").unlink()
    with pytest.raises(OsmaError, match="annotation file.*not found"):
        pose_plan(root, ann, [1], PROTOCOL)


@pytest.mark.skipif(not SHARED.is_dir(), reason="reference POSE annotation files not present")
def test_build_from_slice_of_real_annotations(tmp_path):
    """Images generated at the paths of the first lines of the real split1 annotation files."""
    src = SHARED / "dataset"
    parts = {}
    files = {"train": "split1_train/annotations/split1_train.txt", "val": "split1_val/annotations/split1_val.txt",
             "test": "split1_test/annotations/split1_test.txt",
             "out_seed": "split1_test/annotations/split1_test_out_seed.txt",
             "out_arch": "split1_test/annotations/split1_test_out_arch.txt",
             "out_dataset": "split1_test/annotations/split1_test_out_dataset.txt"}
    for part, rel in files.items():
        lines = (src / rel).read_text().splitlines()[:12]
        parts[part] = [(line.split("\t")[0][2:], int(line.split("\t")[1])) for line in lines]
    offsets = {"seed": 0, "arch": 10, "dataset": 32}
    parts["out"] = [(p, lab + offsets[g]) for g in ("seed", "arch", "dataset") for p, lab in parts[f"out_{g}"]]
    root = tmp_path / "pose"
    write_annotations(root / "dataset", 1, parts)
    seed = 0
    for lines in parts.values():
        for path, _ in lines:
            if not (root / path).exists():
                seed += 1
                fmt = "JPEG" if path.lower().endswith((".jpg", ".jpeg")) else "PNG"
                write_image(root / path, seed, size=(24, 20), fmt=fmt)
    out = run_build(pose_plan(root, root / "dataset", [1], PROTOCOL), tmp_path / "osma", CFG)
    assert verify_dataset(out) == []
    card = load_card(out)
    info = read_split(out, 1)
    for part, lines in parts.items():
        assert len(info.partitions[part][0]) == len(lines)
        names = info.class_names(part)
        assert card["splits"]["1"]["counts"][part] == dict(collections.Counter(names[lab] for _, lab in lines))
