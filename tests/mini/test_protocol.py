"""The mini protocol: groups, rotation and counts, on the definition and on a built tiny dataset."""

from __future__ import annotations

import numpy as np
import pytest

from osma_bench.data import OSMADataset, load_card, read_split, verify_dataset
from osma_bench.data.mini import protocol as proto
from osma_bench.data.mini.build import SCALES, make_benchmark
from osma_bench.data.mini.generators import ARCHITECTURES
from osma_bench.data.mini.sources import DOMAINS, KNOWN_DOMAINS, UNSEEN_DOMAINS, UNSEEN_REAL
from osma_bench.errors import OsmaError


def test_each_split_has_pose_like_groups():
    splits = proto.make_protocol()
    assert len(splits) >= 3
    for s in splits:
        known = set(s.known)
        assert len(known) == len(s.known) >= 9
        groups = s.unknown_groups()
        for name, models in groups.items():
            assert len(set(models)) == len(models) >= 4, name
            assert not set(models) & known, name
        known_cells = {(m.arch, m.domain): m.seed for m in s.known}
        known_archs = {m.arch for m in s.known}
        for m in s.unseen_seed:  # same architecture and domain as a known model, another seed
            assert (m.arch, m.domain) in known_cells and known_cells[(m.arch, m.domain)] != m.seed
        for m in s.unseen_arch:  # an architecture no known model has, on a known domain
            assert m.arch not in known_archs and m.domain in KNOWN_DOMAINS
        for m in s.unseen_dataset:  # a known architecture on a domain no known model saw
            assert m.arch in known_archs and m.domain in UNSEEN_DOMAINS
        assert {m.domain for m in s.known} == set(KNOWN_DOMAINS)


def test_splits_rotate_the_known_models_and_cover_six_plus_families():
    splits = proto.make_protocol()
    known_sets = [frozenset(s.known) for s in splits]
    assert len(set(known_sets)) == len(splits)
    assert len(ARCHITECTURES) >= 6
    assert {m.arch for s in splits for m in s.known} == set(ARCHITECTURES)


def test_domains_keep_unseen_real_apart():
    assert len(KNOWN_DOMAINS) + len(UNSEEN_DOMAINS) >= 4
    files = {d: {s.name for s in DOMAINS[d]} for d in DOMAINS}
    for d in KNOWN_DOMAINS + UNSEEN_DOMAINS:
        assert not files[d] & files[UNSEEN_REAL]


def test_full_scale_counts_meet_the_issue():
    full = SCALES["full"]
    assert full.train >= 300 and full.test >= 100 and full.unknown >= 100 and full.val > 0


def test_built_tiny_dataset_structure(tiny_mini):
    card = load_card(tiny_mini)
    spec = SCALES["tiny"]
    assert verify_dataset(tiny_mini) == []
    assert [c["name"] for c in card["classes"]][0] == "real"
    assert len(card["generators"]) == len(card["classes"]) - 1
    for rec in card["generators"]:
        for key in ("architecture", "domain", "seed", "training_steps", "final_loss"):
            assert key in rec
        assert np.isfinite(rec["final_loss"])
    assert {r["package"] for r in card["real_sources"]} == {"skimage", "sklearn", "matplotlib"}
    assert all(r["crop_policy"] for r in card["real_sources"])
    for k, split in enumerate(proto.make_protocol(), start=1):
        info = read_split(tiny_mini, k)
        assert info.known_classes == ["real"] + [m.name for m in split.known]
        counts = card["splits"][str(k)]["counts"]
        assert all(n == spec.train for n in counts["train"].values()) and len(counts["train"]) == 10
        assert all(n == spec.val for n in counts["val"].values())
        assert counts["test"]["real"] == spec.test + spec.unseen_real
        for g in ("seed", "arch", "dataset"):
            assert list(counts[f"out_{g}"].values()) == [spec.unknown] * len(info.unknown[g])


def test_unseen_real_images_only_in_the_closed_set_test(tiny_mini):
    import h5py

    with h5py.File(tiny_mini / "images-00000.h5", "r") as fh:
        unseen = fh["unseen_real"][:]
        class_id = fh["class_id"][:]
        fmt = fh["orig_format"][:]
    assert unseen.sum() == SCALES["tiny"].unseen_real and (class_id[unseen] == 0).all()
    assert set(fmt[class_id > 0].tolist()) == {b"GEN"}
    for k in (1, 2, 3):
        info = read_split(tiny_mini, k)
        test_idx, test_lab = info.partitions["test"]
        assert (test_lab[unseen[test_idx]] == 0).all() and unseen[test_idx].sum() == unseen.sum()
        for part in ("train", "val", "out"):
            assert not unseen[info.partitions[part][0]].any()
    images, _ = OSMADataset(tiny_mini, 1, "test").load_all()
    assert images.dtype.is_floating_point is False and tuple(images.shape[1:]) == (3, 32, 32)


@pytest.mark.parametrize(("kwargs", "match"), [({"size": 48}, "--size"), ({"scale": "huge"}, "--scale"),
                                               ({"workers": 0}, "--workers")])
def test_bad_options_are_user_errors(kwargs, match):
    with pytest.raises(OsmaError, match=match):
        make_benchmark(**kwargs)
