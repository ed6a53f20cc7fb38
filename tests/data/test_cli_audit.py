"""The data commands end to end (verify-data, audit-data, build-data) and the shortcut audit."""

from __future__ import annotations

import numpy as np

from osma_bench.cli import main
from osma_bench.data import DatasetWriter, load_card, make_synthetic_dataset
from osma_bench.data.audit import audit_dataset, audit_pose_annotations, format_audit
from osma_bench.data.pose import load_protocol

from .imagetree import make_pose_tree, write_image

PROTOCOL = load_protocol()


def test_verify_and_audit_commands(tmp_path, capsys):
    root = make_synthetic_dataset(tmp_path / "syn")
    assert main(["verify-data", str(root)]) == 0
    assert f"{root}: OK" in capsys.readouterr().out
    assert main(["audit-data", str(root)]) == 0
    assert "gan1" in capsys.readouterr().out
    shard = root / load_card(root)["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert main(["verify-data", str(root)]) == 1
    assert "SHA-256 differs" in capsys.readouterr().out
    assert main(["verify-data", str(tmp_path / "nope")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_build_pose_command_and_errors(tmp_path, capsys):
    root, ann, _ = make_pose_tree(tmp_path, PROTOCOL, splits=(1,))
    out = tmp_path / "osma"
    args = ["build-data", "pose", "--root", str(root), "--annotations", str(ann), "--splits", "1",
            "--size", "16", "--out", str(out)]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["verify-data", str(out)]) == 0
    assert main(args) == 2  # refuses to overwrite
    assert "already there" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--normalize", "jpeg:90", "--workers", "2"]) == 0
    assert load_card(out)["preprocessing"]["normalize"] == "jpeg:90"
    assert main(args + ["--overwrite", "--normalize", "gif"]) == 2
    assert "--normalize" in capsys.readouterr().err
    (root / "dataset/OSMA/real/train_0.png").write_bytes(b"")
    assert main(args + ["--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "train_0.png: empty file" in err and "Traceback" not in err


def test_audit_flags_format_shortcut(tmp_path):
    classes = [{"name": "real", "real": True}, {"name": "a"}, {"name": "b"}]
    writer = DatasetWriter(tmp_path / "ds", "ds", 8, classes, shard_size=100)
    cls = np.array([0] * 30 + [1] * 30 + [2] * 30)
    images = np.random.default_rng(0).integers(0, 256, (90, 8, 8, 3), dtype=np.uint8)
    writer.add_images(images, cls, orig_format=["JPEG"] * 30 + ["PNG"] * 60, orig_width=64, orig_height=64)
    writer.add_split(1, ["real", "a", "b"], {}, {"train": (np.arange(90), cls)})
    report = audit_dataset(writer.finalize())
    assert any("every format JPEG image is real" in f for f in report.flags)
    assert any("format alone separates real from fake" in f for f in report.flags)
    assert not any("size" in f for f in report.flags)  # one size for all: no size flag
    text = format_audit(report)
    assert "--normalize jpeg:Q" in text and "JPEG 30" in text


def test_audit_no_flags_on_mixed_formats(tmp_path):
    classes = [{"name": "real", "real": True}, {"name": "a"}]
    writer = DatasetWriter(tmp_path / "ds", "ds", 8, classes, shard_size=100)
    cls = np.array([0, 1] * 40)
    images = np.random.default_rng(0).integers(0, 256, (80, 8, 8, 3), dtype=np.uint8)
    writer.add_images(images, cls, orig_format=["JPEG", "JPEG", "PNG", "PNG"] * 20)
    writer.add_split(1, ["real", "a"], {}, {"train": (np.arange(80), cls)})
    assert audit_dataset(writer.finalize()).flags == []


def test_audit_pose_annotations_before_building(tmp_path):
    root, ann, written = make_pose_tree(tmp_path, PROTOCOL, splits=(1,), per_class=25)
    for path, label in written[1]["train"]:
        if label == 0:  # every real training image becomes a JPEG (still named .png)
            write_image(root / path, 99, fmt="JPEG")
    report = audit_pose_annotations(root, ann, [1])
    assert any("split1 train: every format JPEG image is real" in f for f in report.flags)
