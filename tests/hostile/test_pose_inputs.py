"""Broken POSE annotation lists: a BOM, non-UTF-8 lines, an all-unknowns list that disagrees with
the per-group lists, and a slice with many kinds of broken items, all named in one refusal."""

from __future__ import annotations

import shutil

import pytest

from osma_bench.data import load_card
from osma_bench.data.build import run_build
from osma_bench.data.pose import load_protocol, pose_plan
from osma_bench.data.preprocess import PreprocessConfig
from osma_bench.errors import OsmaError
from tests.data.imagetree import make_pose_tree, write_annotations

PROTOCOL = load_protocol()
CFG = PreprocessConfig(size=16, allow_upscale=True)
TRAIN = "split1_train/annotations/split1_train.txt"
OUT = "split1_test/annotations/split1_test_out.txt"


def _build(root, ann, out):
    return run_build(pose_plan(root, ann, [1], PROTOCOL), out, CFG)


def test_byte_order_mark_in_an_annotation_file_is_handled(tmp_path):
    root, ann, _ = make_pose_tree(tmp_path, PROTOCOL)
    plain = load_card(_build(root, ann, tmp_path / "plain"))["content_sha256"]
    path = ann / TRAIN
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_card(_build(root, ann, tmp_path / "bom"))["content_sha256"] == plain


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda out: out[:-1], "of a per-group unknown list is missing here"),
    (lambda out: out + [("dataset/OSMA/real/CoCo/1.jpg", 0)], "is not in any per-group unknown list"),
    (lambda out: [(p, (lab + 1) % 3) if i == 0 else (p, lab) for i, (p, lab) in enumerate(out)], "has label"),
])
def test_all_unknowns_list_must_match_the_per_group_lists(tmp_path, edit, fragment):
    root, ann, written = make_pose_tree(tmp_path, PROTOCOL)
    parts = dict(written[1])
    parts["out"] = edit(list(parts["out"]))
    write_annotations(ann, 1, parts)
    with pytest.raises(OsmaError, match=fragment) as err:
        _build(root, ann, tmp_path / "ds")
    assert str(ann / OUT) in str(err.value)
    assert not (tmp_path / "ds").exists() and not (tmp_path / "ds.partial").exists()


def test_a_slice_with_every_kind_of_broken_item_is_named_in_one_refusal(tmp_path):
    root, ann, written = make_pose_tree(tmp_path, PROTOCOL)
    parts = dict(written[1])
    cls = root / "dataset/OSMA" / PROTOCOL["splits"][1]["known"][1]
    (cls / "zero.png").write_bytes(b"")
    good = (cls / "train_0.png").read_bytes()
    (cls / "trunc.png").write_bytes(good[: len(good) // 2])
    shutil.copy(cls / "train_0.png", cls / "dup.png")
    rel = f"dataset/OSMA/{cls.name}"
    parts["train"] = parts["train"] + [(f"{rel}/zero.png", 1), (f"{rel}/trunc.png", 1), (f"{rel}/missing.png", 1)]
    parts["test"] = parts["test"] + [(f"{rel}/dup.png", 1)]
    write_annotations(ann, 1, parts)
    path = ann / TRAIN
    path.write_bytes(path.read_bytes() + b"./dataset/OSMA/x\xff.png\t1\n" + b"./a.png\t\xc2\xb2\n"
                     + f"./{rel}/train_1.png\t1\n".encode() + b"./b.png\t99\n")
    with pytest.raises(OsmaError) as err:
        _build(root, ann, tmp_path / "ds")
    message = str(err.value)
    for fragment in ("zero.png: empty file", "trunc.png:", "missing.png: file not found", "not UTF-8 text",
                     "malformed annotation line", "listed twice", "label 99 outside", "same content"):
        assert fragment in message, fragment
    assert not (tmp_path / "ds").exists() and not (tmp_path / "ds.partial").exists()
