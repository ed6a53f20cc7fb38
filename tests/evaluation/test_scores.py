"""Score files: round trip, atomic write, and refusal of malformed or hostile files."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from osma_bench.errors import OsmaError
from osma_bench.evaluation.scores import read_scores, validate_against_split, write_scores
from tests.evaluation.conftest import fake_scores_for_split


@pytest.fixture
def good(tmp_path, synthetic_root):
    args = fake_scores_for_split(synthetic_root, 1, features=True)
    path = write_scores(tmp_path / "scores.h5", **args)
    return path, args


def test_round_trip(good, synthetic_root):
    path, args = good
    table = read_scores(path)
    assert np.array_equal(table.index, args["index"])
    assert table.logits.dtype == np.float32 and table.score.dtype == np.float64
    assert table.group.dtype == np.int8 and table.features.shape[1] == 8
    assert (table.split, table.method, table.num_classes) == (1, "toy", 3)
    info = validate_against_split(table, synthetic_root, 1)
    assert info.known_classes == ["real", "gan1", "gan2"]


def test_write_is_atomic_and_validates(tmp_path, synthetic_root):
    args = fake_scores_for_split(synthetic_root, 1)
    args["score"] = args["score"].copy()
    args["score"][3] = np.nan
    with pytest.raises(OsmaError, match="NaN"):
        write_scores(tmp_path / "scores.h5", **args)
    assert list(tmp_path.iterdir()) == []


def _rewrite(path, name, data=None, drop=False, **kw):
    with h5py.File(path, "a") as fh:
        del fh[name]
        if not drop:
            fh.create_dataset(name, data=data, **kw)


@pytest.mark.parametrize("mutate, message", [
    (lambda p, a: _rewrite(p, "logits", a["logits"][:, :2]), "'logits' has 2 columns"),
    (lambda p, a: _rewrite(p, "score", a["score"][:-1]), "'score' has .* rows"),
    (lambda p, a: _rewrite(p, "score", a["score"][:, None]), "'score' has shape"),
    (lambda p, a: _rewrite(p, "group", drop=True), "missing dataset 'group'"),
    (lambda p, a: _rewrite(p, "score", np.where(np.arange(a["score"].size) == 2, np.nan, a["score"])), "NaN"),
    (lambda p, a: _rewrite(p, "sha256", np.array([s.decode() for s in a["sha256"]], dtype=object),
                           dtype=h5py.string_dtype()), "dtype"),
    (lambda p, a: _rewrite(p, "score", np.void(pickle.dumps({"x": 1}))), "dtype"),
    (lambda p, a: _rewrite(p, "label", np.zeros(a["label"].size, dtype=[("a", "i8"), ("b", "f8")])), "dtype"),
    (lambda p, a: _rewrite(p, "group", np.full(a["group"].size, 7)), "'group' must be"),
    (lambda p, a: _rewrite(p, "index", np.zeros(a["index"].size, np.int64)), "more than one row"),
])
def test_malformed_files_are_refused(good, mutate, message):
    path, args = good
    mutate(path, args)
    with pytest.raises(OsmaError, match=message) as info:
        read_scores(path)
    assert str(path) in str(info.value)


def test_links_and_attributes_are_checked(good, tmp_path):
    path, _ = good
    with h5py.File(path, "a") as fh:
        del fh["score"]
        fh["score"] = h5py.ExternalLink(str(tmp_path / "elsewhere.h5"), "/score")
    with pytest.raises(OsmaError, match="is a link"):
        read_scores(path)
    path2 = tmp_path / "v2.h5"
    path2.write_bytes(b"not an hdf5 file")
    with pytest.raises(OsmaError, match="not an HDF5 file"):
        read_scores(path2)
    with pytest.raises(OsmaError, match="file not found"):
        read_scores(tmp_path / "absent.h5")


def test_schema_version_and_attributes(good):
    path, _ = good
    with h5py.File(path, "a") as fh:
        fh.attrs["schema_version"] = 2
    with pytest.raises(OsmaError, match="schema_version 2 is not supported"):
        read_scores(path)
    with h5py.File(path, "a") as fh:
        fh.attrs["schema_version"] = 1
        del fh.attrs["method"]
    with pytest.raises(OsmaError, match="missing root attribute"):
        read_scores(path)


def test_validation_against_the_split(tmp_path, synthetic_root):
    args = fake_scores_for_split(synthetic_root, 1)
    keep = np.arange(args["index"].size) != 0
    short = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in args.items()}
    table = read_scores(write_scores(tmp_path / "a.h5", **short))
    with pytest.raises(OsmaError, match="lacks rows for 1 of"):
        validate_against_split(table, synthetic_root, 1)

    bad_sha = dict(args, sha256=args["sha256"].copy())
    bad_sha["sha256"][5] = b"0" * 64
    with pytest.raises(OsmaError, match="SHA-256"):
        validate_against_split(read_scores(write_scores(tmp_path / "b.h5", **bad_sha)), synthetic_root, 1)

    with pytest.raises(OsmaError, match="not split 2"):
        validate_against_split(read_scores(write_scores(tmp_path / "c.h5", **args)), synthetic_root, 2)

    other = dict(args, dataset_sha256="f" * 64)
    with pytest.raises(OsmaError, match="dataset version"):
        validate_against_split(read_scores(write_scores(tmp_path / "d.h5", **other)), synthetic_root, 1)

    relabel = dict(args, label=args["label"].copy())
    relabel["label"][0] = (relabel["label"][0] + 1) % 3
    with pytest.raises(OsmaError, match="the split says"):
        validate_against_split(read_scores(write_scores(tmp_path / "e.h5", **relabel)), synthetic_root, 1)


# --------------------------------------------------------------------------- the optional augmented group


def _augmented(m: int = 6, d: int = 8, seed: int = 1) -> dict:
    """``write_scores`` arguments for ``m`` augmented rows of dimension ``d`` from two sources."""
    rng = np.random.default_rng(seed)
    return {"augmented_features": rng.normal(size=(m, d)).astype(np.float32),
            "augmented_source": ["aug_0"] * (m // 2) + ["aug_1"] * (m - m // 2)}


@pytest.fixture
def good_aug(tmp_path, synthetic_root):
    args = {**fake_scores_for_split(synthetic_root, 1, features=True), **_augmented()}
    return write_scores(tmp_path / "scores.h5", **args), args


def test_augmented_round_trip(good_aug, synthetic_root):
    path, args = good_aug
    with h5py.File(path) as fh:
        assert fh["augmented/features"].dtype == np.float32 and fh["augmented/source"].dtype.kind == "S"
    table = read_scores(path)
    aug = table.augmented
    assert aug is not None and len(aug) == 6
    assert np.array_equal(aug.features, args["augmented_features"])
    assert aug.sources() == ["aug_0", "aug_1"] and list(aug.rows("aug_1")) == [3, 4, 5]
    validate_against_split(table, synthetic_root, 1)  # the split check ignores the augmented rows


def test_files_without_augmented_features_stay_valid(good):
    assert read_scores(good[0]).augmented is None


@pytest.mark.parametrize("change, message", [
    (dict(augmented_features=np.zeros((6, 5))), r"'augmented/features' has shape \(6, 5\), expected \(M, 8\)"),
    (dict(augmented_features=np.full((6, 8), np.nan)), "'augmented/features' has 48 NaN"),
    (dict(features=None), "'augmented' needs the root 'features'"),
    (dict(augmented_source=None), "needs both augmented_features and augmented_source"),
    (dict(augmented_source=["aug_0"] * 5), r"'augmented/source' has shape \(5,\), expected \(6,\)"),
    (dict(augmented_source=["aug_0"] * 5 + [""]), "non-empty printable text"),
    (dict(augmented_source=["x" * 65] * 6), "at most 64 are accepted"),
    (dict(augmented_features=np.zeros((0, 8)), augmented_source=np.zeros(0, "S5")), "has no rows"),
    (dict(augmented_source=np.arange(6)), "expected text names"),
])
def test_malformed_augmented_features_are_not_written(tmp_path, synthetic_root, change, message):
    args = {**fake_scores_for_split(synthetic_root, 1, features=True), **_augmented(), **change}
    with pytest.raises(OsmaError, match=message):
        write_scores(tmp_path / "scores.h5", **args)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mutate, message", [
    (lambda p: _rewrite(p, "augmented/features", np.zeros((6, 5), np.float32)), "has 5 columns, 'features' has 8"),
    (lambda p: _rewrite(p, "augmented/features", np.full((6, 8), np.inf, np.float32)), "NaN or infinite"),
    (lambda p: _rewrite(p, "features", drop=True), "'augmented' needs the root 'features'"),
    (lambda p: _rewrite(p, "augmented/features", np.zeros((6, 8), np.int64)), "expected plain numbers"),
    (lambda p: _rewrite(p, "augmented/source", np.array(["aug_0"] * 6, dtype=object), dtype=h5py.string_dtype()),
     r"'augmented/source' has dtype .*fixed-length byte strings"),
    (lambda p: _rewrite(p, "augmented/source", np.void(pickle.dumps({"x": 1}))), "dtype"),
    (lambda p: _rewrite(p, "augmented/source", np.array([b"a"] * 5)), "'augmented/source' has 5 rows"),
    (lambda p: _rewrite(p, "augmented/source", np.array([b"\xff\xfe"] * 6)), "not UTF-8"),
    (lambda p: _rewrite(p, "augmented/features", drop=True), "missing dataset 'augmented/features'"),
])
def test_malformed_augmented_files_are_refused(good_aug, mutate, message):
    path, _ = good_aug
    mutate(path)
    with pytest.raises(OsmaError, match=message) as info:
        read_scores(path)
    assert str(path) in str(info.value)


def test_augmented_group_bounds_and_links(good_aug, tmp_path, monkeypatch):
    path, _ = good_aug
    monkeypatch.setattr("osma_bench.evaluation.scores.MAX_AUGMENTED_ROWS", 5)
    with pytest.raises(OsmaError, match="has 6 rows; at most 5"):
        read_scores(path)
    monkeypatch.undo()
    with h5py.File(path, "a") as fh:
        fh.move("augmented", "elsewhere")
        fh["augmented"] = h5py.SoftLink("/elsewhere")
    with pytest.raises(OsmaError, match="'augmented' must be a plain group"):
        read_scores(path)
    with h5py.File(path, "a") as fh:
        del fh["augmented"]
        fh["augmented"] = np.zeros(3)
    with pytest.raises(OsmaError, match="'augmented' must be a plain group"):
        read_scores(path)
