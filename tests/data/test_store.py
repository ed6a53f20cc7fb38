"""The store writer and reader (contract section 1), on the synthetic fixture dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from osma_bench.data import (
    BalancedBatchSampler,
    DatasetWriter,
    OSMADataset,
    load_card,
    make_synthetic_dataset,
    read_split,
    verify_dataset,
)
from osma_bench.data.store import partial_dir
from osma_bench.errors import OsmaError


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("syn") / "syn", num_known=3, splits=2, seed=0)


def test_synthetic_dataset_is_valid_and_complete(synth):
    assert verify_dataset(synth) == []
    card = load_card(synth)
    assert card["num_images"] == 3 * 16 + 3 * 4
    assert not partial_dir(synth).exists()
    for k in (1, 2):
        info = read_split(synth, k)
        assert info.known_classes == ["real", "gan1", "gan2"]
        assert all(len(info.unknown[g]) >= 1 for g in ("seed", "arch", "dataset"))
        assert card["splits"][str(k)]["counts"]["train"] == {"real": 8, "gan1": 8, "gan2": 8}
        out_idx, out_lab = info.partitions["out"]
        assert sorted(out_lab.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
        assert len(set(out_idx.tolist())) == 12
    # the two splits partition the known images differently
    assert not np.array_equal(read_split(synth, 1).partitions["train"][0], read_split(synth, 2).partitions["train"][0])


def test_same_seed_same_content_hash(tmp_path, synth):
    again = make_synthetic_dataset(tmp_path / "a", num_known=3, splits=2, seed=0)
    other = make_synthetic_dataset(tmp_path / "b", num_known=3, splits=2, seed=1)
    assert load_card(again)["content_sha256"] == load_card(synth)["content_sha256"]
    assert load_card(other)["content_sha256"] != load_card(synth)["content_sha256"]


def test_getitem_load_all_and_float_view_agree(synth):
    ds = OSMADataset(synth, 1, "test")
    images, labels = ds.load_all()
    assert images.shape == (len(ds), 3, 32, 32) and images.dtype == torch.uint8
    for i in range(len(ds)):
        image, label, index = ds[i]
        assert torch.equal(image, images[i]) and label == labels[i] and index == ds.indices[i]
    floats, _ = ds.load_all(as_float=True)
    assert floats.dtype == torch.float32 and floats.min() >= -1 and floats.max() <= 1
    assert torch.allclose(floats, images.float() / 127.5 - 1)
    assert torch.equal(OSMADataset(synth, 1, "test", as_float=True)[3][0], floats[3])
    assert ds.class_names == ["real", "gan1", "gan2"]
    assert OSMADataset(synth, 1, "out").class_names == ["gan1_seed1", "arch0", "gan1_data0"]


def test_dataloader_with_workers(synth):
    ds = OSMADataset(synth, 2, "train")
    seen = {}
    for images, _labels, index in DataLoader(ds, batch_size=5, num_workers=2):
        for img, idx in zip(images, index, strict=True):
            seen[int(idx)] = img
    reference, _ = ds.load_all()
    assert len(seen) == len(ds)
    for pos, idx in enumerate(ds.indices):
        assert torch.equal(seen[int(idx)], reference[pos])


def test_balanced_sampler():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 5)
    sampler = BalancedBatchSampler(labels, per_class=2, seed=3)
    assert len(sampler) == 5
    steps = list(sampler)
    assert len(steps) == 5
    for step in steps:
        assert np.bincount(labels[step], minlength=3).tolist() == [2, 2, 2]
    # class 0 (largest) sees every image once per epoch
    assert sorted(i for s in steps for i in s if labels[i] == 0) == list(range(10))
    again = BalancedBatchSampler(labels, per_class=2, seed=3)
    assert list(again) == steps  # same seed, same order
    assert list(again) != steps  # the next epoch differs
    again.set_epoch(0)
    assert list(again) == steps
    assert len(BalancedBatchSampler(labels, 2, 0, num_steps=7)) == 7


def _writer(tmp_path, **kw):
    classes = [{"name": "real", "real": True}, {"name": "fake"}, {"name": "unk"}]
    return DatasetWriter(tmp_path / "ds", "ds", 8, classes, shard_size=4, build_info={"seed": 0}, **kw)


def _fill(writer, rng_seed=0, start=0):
    rng = np.random.default_rng(rng_seed)
    images = rng.integers(0, 256, size=(11, 8, 8, 3), dtype=np.uint8)
    cls = np.array([0, 1] * 5 + [2])
    idx = writer.add_images(images[start:], cls[start:], orig_format="PNG", orig_width=10, orig_height=12)
    return idx


def _split(writer):
    writer.add_split(1, ["real", "fake"], {"seed": ["unk"], "arch": [], "dataset": []}, {
        "train": (np.arange(6), np.array([0, 1] * 3)), "val": (np.array([6, 7]), np.array([0, 1])),
        "test": (np.array([8, 9]), np.array([0, 1])), "out_seed": (np.array([10]), np.array([0])),
    })


def test_writer_shards_columns_and_refusals(tmp_path):
    writer = _writer(tmp_path)
    assert _fill(writer).tolist() == list(range(11))
    _split(writer)
    root = writer.finalize({"extra": 1})
    card = load_card(root)
    assert [s["num_images"] for s in card["shards"]] == [4, 4, 3]
    assert card["extra"] == 1 and card["classes"][1]["real"] is False
    assert card["splits"]["1"]["counts"]["out"] == {"unk": 1}
    assert verify_dataset(root) == []
    with pytest.raises(OsmaError, match="already there"):
        _writer(tmp_path)
    second = _writer(tmp_path, overwrite=True)
    _fill(second, rng_seed=5)
    _split(second)
    second.finalize()
    assert load_card(root)["content_sha256"] != card["content_sha256"]
    with pytest.raises(OsmaError, match="uint8"):
        _writer(tmp_path / "x").add_images(np.zeros((1, 8, 8, 3), np.float32), 0)
    bad = _writer(tmp_path / "y")
    with pytest.raises(OsmaError, match="label outside"):
        bad.add_split(1, ["real"], {}, {"train": (np.array([0]), np.array([3]))})
    with pytest.raises(OsmaError, match="not in the dataset"):
        bad.add_split(1, ["real", "nope"], {}, {})


def test_writer_resume_gives_same_content(tmp_path):
    whole = _writer(tmp_path / "a")
    _fill(whole)
    _split(whole)
    expected = load_card(whole.finalize())["content_sha256"]

    first = _writer(tmp_path / "b", plan_fingerprint="p")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(11, 8, 8, 3), dtype=np.uint8)
    first.add_images(images[:6], np.array([0, 1] * 3), orig_format="PNG", orig_width=10, orig_height=12)
    first.abort()  # killed: shard 0 closed, shard 1 half written
    assert not (tmp_path / "b" / "ds").exists()
    with pytest.raises(OsmaError, match="other inputs"):
        _writer(tmp_path / "b", resume=True, plan_fingerprint="q")
    resumed = _writer(tmp_path / "b", resume=True, plan_fingerprint="p")
    assert resumed.num_images == 4
    _fill(resumed, start=4)
    _split(resumed)
    root = resumed.finalize()
    assert load_card(root)["content_sha256"] == expected
    assert verify_dataset(root) == []


def test_verify_catches_flipped_byte(tmp_path):
    root = make_synthetic_dataset(tmp_path / "syn", splits=1)
    shard = root / load_card(root)["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    problems = verify_dataset(root)
    assert any("SHA-256 differs" in p and shard.name in p for p in problems)


def test_verify_catches_content_in_two_partitions(tmp_path):
    writer = _writer(tmp_path)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    images[3] = images[0]
    writer.add_images(images, [0, 1, 0, 0])
    writer.add_split(1, ["real", "fake"], {}, {"train": (np.array([0, 1]), np.array([0, 1])),
                                               "test": (np.array([2, 3]), np.array([0, 0]))})
    root = writer.finalize()
    problems = verify_dataset(root)
    assert problems == [f"{root / 'splits.h5'} split1: 1 image(s) with the same content (SHA-256) in both train and test"]
