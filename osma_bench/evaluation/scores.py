"""Score files (``scores.h5``, schema version 1; docs/CONTRACTS.md section 3): write, read, validate.

A score file holds one row per test image of a split: the known test images (group 0), then every
unknown group (1 seed, 2 architecture, 3 dataset). It is how a run hands its predictions to the
evaluation, and how a method built elsewhere is submitted, so reading treats it as untrusted data:
only plain numeric and fixed-length byte datasets are accepted, every shape, dtype and value is
checked before use, and nothing is ever unpickled or executed.

An optional group ``augmented`` holds feature vectors of samples a method synthesises from known
test images (POSE's augmentation models, a GAN's samples, ...) for the t-SNE plot: ``features``
(M, D) with the same D as the root ``features``, and ``source`` (M,), the name of what made each row.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from osma_bench.errors import OsmaError
from osma_bench.io import atomic_path, ensure_room
from osma_bench.protocol import SCORE_GROUPS, TEST_PARTITIONS

SCHEMA_VERSION = 1
GROUPS = SCORE_GROUPS  # group code -> name
GROUP_PARTITIONS = TEST_PARTITIONS  # group code -> split partition
_ROOT_ATTRS = ("schema_version", "num_classes", "split", "dataset_sha256", "method")
_REQUIRED = ("index", "sha256", "group", "label", "logits", "score")
AUGMENTED = "augmented"  # the optional group of augmented samples' features
MAX_AUGMENTED_ROWS = 100_000  # at most this many augmented rows (a plot needs far fewer)
MAX_SOURCE_BYTES = 64  # longest name of an augmented row's source, in UTF-8 bytes


@dataclass
class AugmentedFeatures:
    """Feature vectors of augmented samples (the optional ``augmented`` group of a score file)."""

    features: np.ndarray  # float32 (M, D), D as the table's features
    source: np.ndarray  # S<L> (M,), UTF-8 names such as b"aug_3"

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def sources(self) -> list[str]:
        """The distinct source names, in order of first appearance."""
        names, first = np.unique(self.source, return_index=True)
        return [n.decode("utf-8") for n in names[np.argsort(first)]]

    def rows(self, source: str) -> np.ndarray:
        """Row positions of the samples made by ``source``."""
        return np.flatnonzero(self.source == source.encode("utf-8"))


@dataclass
class ScoreTable:
    """The validated content of a score file (arrays in the contract's dtypes)."""

    index: np.ndarray  # int64 (N,)
    sha256: np.ndarray  # S64 (N,)
    group: np.ndarray  # int8 (N,)
    label: np.ndarray  # int64 (N,)
    logits: np.ndarray  # float32 (N, K)
    score: np.ndarray  # float64 (N,)
    features: np.ndarray | None  # float32 (N, D)
    split: int
    dataset_sha256: str
    method: str
    num_classes: int
    schema_version: int = SCHEMA_VERSION
    source: str = "<memory>"
    augmented: AugmentedFeatures | None = None  # features of augmented samples, when the file has them

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def rows(self, group: int) -> np.ndarray:
        """Row positions of ``group`` (0 known, 1 seed, 2 arch, 3 dataset)."""
        return np.flatnonzero(self.group == group)


# --------------------------------------------------------------------------- checks shared by write and read


def _fail(where: str, what: str) -> OsmaError:
    return OsmaError(f"{where}: {what}")


def _check_text(value, name: str, where: str) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(where, f"attribute {name!r} is not UTF-8 text") from None
    if not isinstance(value, str) or not value:
        raise _fail(where, f"attribute {name!r} must be a non-empty string, got {type(value).__name__}")
    return value


def _check_int(value, name: str, where: str, minimum: int) -> int:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise _fail(where, f"attribute {name!r} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise _fail(where, f"attribute {name!r} must be at least {minimum}, got {int(value)}")
    return int(value)


def _validate(table: ScoreTable, where: str) -> ScoreTable:
    """Check a table's shapes, dtypes and values; raise OsmaError naming ``where`` and the problem."""
    n = table.index.shape[0]
    if n == 0:
        raise _fail(where, "no rows (a score file needs one row per test image of the split)")
    for name in ("index", "sha256", "group", "label", "score"):
        arr = getattr(table, name)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise _fail(where, f"{name!r} has shape {arr.shape}, expected ({n},) like 'index'")
    k = table.num_classes
    if table.logits.ndim != 2 or table.logits.shape != (n, k):
        raise _fail(where, f"'logits' has shape {table.logits.shape}, expected ({n}, {k}) (rows, num_classes)")
    if table.features is not None and (table.features.ndim != 2 or table.features.shape[0] != n):
        raise _fail(where, f"'features' has shape {table.features.shape}, expected ({n}, D)")
    if not re.fullmatch(r"[0-9a-f]{64}", table.dataset_sha256):
        raise _fail(where, "attribute 'dataset_sha256' must be 64 lowercase hex digits")
    for name, arr in (("score", table.score), ("logits", table.logits), ("features", table.features),
                      (f"{AUGMENTED}/features", table.augmented.features if table.augmented else None)):
        if arr is None:
            continue
        bad = ~np.isfinite(arr)
        if bad.any():
            first = np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), arr.shape)
            raise _fail(where, f"{name!r} has {int(bad.sum())} NaN or infinite values (first at row {int(first[0])})")
    if (table.index < 0).any():
        raise _fail(where, "'index' has negative image indices")
    bad_group = ~np.isin(table.group, np.arange(len(GROUPS)))
    if bad_group.any():
        raise _fail(where, f"'group' must be 0 (known), 1 (seed), 2 (arch) or 3 (dataset); "
                           f"row {int(np.flatnonzero(bad_group)[0])} has {int(table.group[bad_group][0])}")
    if (table.label < 0).any():
        raise _fail(where, "'label' has negative labels")
    known = table.group == 0
    if (table.label[known] >= k).any():
        raise _fail(where, f"'label' of a known test image is >= num_classes ({k})")
    chars = np.ascontiguousarray(table.sha256).view(np.uint8).reshape(n, 64)
    hex_ok = ((chars >= ord("0")) & (chars <= ord("9"))) | ((chars >= ord("a")) & (chars <= ord("f")))
    bad_sha = ~hex_ok.all(axis=1)
    if bad_sha.any():
        raise _fail(where, f"'sha256' row {int(np.flatnonzero(bad_sha)[0])} is not 64 lowercase hex digits")
    key = table.group.astype(np.int64) * (int(table.index.max()) + 1) + table.index
    uniq, counts = np.unique(key, return_counts=True)
    if uniq.size != n:
        dup = int(uniq[counts > 1][0] % (int(table.index.max()) + 1))
        raise _fail(where, f"image index {dup} has more than one row in the same group")
    if table.augmented is not None:
        _validate_augmented(table.augmented, table.features, where)
    return table


def _validate_augmented(aug: AugmentedFeatures, features: np.ndarray | None, where: str) -> None:
    """Shapes and names of the ``augmented`` group (finite values are checked with the rest)."""
    if features is None:
        raise _needs_features(where)
    feats, src = aug.features, aug.source
    if feats.ndim != 2 or feats.shape[1] != features.shape[1]:
        raise _fail(where, f"'{AUGMENTED}/features' has shape {feats.shape}, expected (M, {features.shape[1]}) "
                           "(D as 'features')")
    m = feats.shape[0]
    if src.ndim != 1 or src.shape[0] != m:
        raise _fail(where, f"'{AUGMENTED}/source' has shape {src.shape}, expected ({m},) like "
                           f"'{AUGMENTED}/features'")
    _check_augmented_size(m, src.dtype.itemsize, where)
    for name in np.unique(src):
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(where, f"'{AUGMENTED}/source' has a name that is not UTF-8 text") from None
        if not text.strip() or not text.isprintable():
            raise _fail(where, f"'{AUGMENTED}/source' names must be non-empty printable text, got {text!r}")


def _check_augmented_size(m: int, name_bytes: int, where: str) -> None:
    """Bounds of the ``augmented`` group: 1 to MAX_AUGMENTED_ROWS rows, names of MAX_SOURCE_BYTES at most."""
    if m == 0:
        raise _fail(where, f"'{AUGMENTED}' has no rows; leave the group out instead")
    if m > MAX_AUGMENTED_ROWS:
        raise _fail(where, f"'{AUGMENTED}' has {m} rows; at most {MAX_AUGMENTED_ROWS} are accepted")
    if name_bytes > MAX_SOURCE_BYTES:
        raise _fail(where, f"'{AUGMENTED}/source' names are up to {name_bytes} bytes; at most "
                           f"{MAX_SOURCE_BYTES} are accepted")


def _needs_features(where: str) -> OsmaError:
    return _fail(where, f"'{AUGMENTED}' needs the root 'features' (augmented rows are plotted with them)")


# --------------------------------------------------------------------------- write


def _as_bytes(values, name: str, where: str, encoding: str, expected: str) -> np.ndarray:
    """Fixed-length byte strings (numpy ``S``) from str or bytes array-likes."""
    arr = np.asarray(values)
    if arr.dtype.kind == "U":
        try:
            arr = np.char.encode(arr, encoding)
        except UnicodeEncodeError:
            raise _fail(where, f"{name!r} must be {expected}") from None
    elif arr.dtype.kind == "O":
        try:
            arr = np.asarray([s.encode(encoding) if isinstance(s, str) else bytes(s) for s in arr.ravel()],
                             dtype="S").reshape(arr.shape)
        except (TypeError, UnicodeEncodeError):
            raise _fail(where, f"{name!r} must be {expected}") from None
    if arr.dtype.kind != "S":
        raise _fail(where, f"{name!r} has dtype {arr.dtype}, expected {expected}")
    return arr


def make_table(*, index, sha256, group, label, logits, score, features=None, augmented_features=None,
               augmented_source=None, split, dataset_sha256, method, num_classes,
               source: str = "<memory>") -> ScoreTable:
    """Build and validate a :class:`ScoreTable` from array-likes (what :func:`write_scores` writes).

    ``augmented_features`` (M, D) and ``augmented_source`` (M names) go together: both or neither.
    """
    where = source

    def numeric(values, name, kinds):
        arr = np.asarray(values)
        if arr.dtype.kind not in kinds:
            raise _fail(where, f"{name!r} has dtype {arr.dtype}, expected {'integers' if kinds == 'iu' else 'floats'}")
        return arr

    sha = _as_bytes(sha256, "sha256", where, "ascii", "hex strings")
    if (augmented_features is None) != (augmented_source is None):
        raise _fail(where, f"'{AUGMENTED}' needs both augmented_features and augmented_source")
    augmented = None
    if augmented_features is not None:
        augmented = AugmentedFeatures(
            features=numeric(augmented_features, f"{AUGMENTED}/features", "iuf").astype(np.float32),
            source=_as_bytes(augmented_source, f"{AUGMENTED}/source", where, "utf-8", "text names"),
        )
    table = ScoreTable(
        index=numeric(index, "index", "iu").astype(np.int64),
        sha256=sha.astype("S64"),
        group=numeric(group, "group", "iu").astype(np.int64),
        label=numeric(label, "label", "iu").astype(np.int64),
        logits=numeric(logits, "logits", "iuf").astype(np.float32),
        score=numeric(score, "score", "iuf").astype(np.float64),
        features=None if features is None else numeric(features, "features", "iuf").astype(np.float32),
        split=_check_int(split, "split", where, 1),
        dataset_sha256=_check_text(dataset_sha256, "dataset_sha256", where),
        method=_check_text(method, "method", where),
        num_classes=_check_int(num_classes, "num_classes", where, 1),
        source=source,
        augmented=augmented,
    )
    if sha.size and sha.dtype.itemsize != 64:
        raise _fail(where, "'sha256' entries must be 64 hex digits")
    _validate(table, where)
    table.group = table.group.astype(np.int8)
    return table


def write_scores(path: str | os.PathLike, *, index, sha256, group, label, logits, score, features=None,
                 augmented_features=None, augmented_source=None, split: int, dataset_sha256: str, method: str,
                 num_classes: int) -> Path:
    """Validate and write a score file atomically (a reader never sees a half-written file)."""
    path = Path(path)
    table = make_table(index=index, sha256=sha256, group=group, label=label, logits=logits, score=score,
                       features=features, augmented_features=augmented_features,
                       augmented_source=augmented_source, split=split, dataset_sha256=dataset_sha256,
                       method=method, num_classes=num_classes, source=str(path))
    arrays = (table.index, table.sha256, table.group, table.label, table.logits, table.score, table.features,
              *((table.augmented.features, table.augmented.source) if table.augmented is not None else ()))
    ensure_room(path, sum(a.nbytes for a in arrays if a is not None) + 2**20)  # before HDF5 writes lazily
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.attrs["schema_version"] = np.int64(SCHEMA_VERSION)
        fh.attrs["num_classes"] = np.int64(table.num_classes)
        fh.attrs["split"] = np.int64(table.split)
        fh.attrs["dataset_sha256"] = table.dataset_sha256
        fh.attrs["method"] = table.method
        fh.create_dataset("index", data=table.index)
        fh.create_dataset("sha256", data=table.sha256)
        fh.create_dataset("group", data=table.group)
        fh.create_dataset("label", data=table.label)
        fh.create_dataset("logits", data=table.logits)
        fh.create_dataset("score", data=table.score)
        if table.features is not None:
            fh.create_dataset("features", data=table.features)
        if table.augmented is not None:
            group = fh.create_group(AUGMENTED)
            group.create_dataset("features", data=table.augmented.features)
            group.create_dataset("source", data=table.augmented.source)
    return path


# --------------------------------------------------------------------------- read


def _read_dataset(fh: h5py.File, name: str, where: str, kinds: str, ndim: int,
                  expected: str | None = None) -> h5py.Dataset:
    link = fh.get(name, getlink=True)
    if link is None:
        raise _fail(where, f"missing dataset {name!r}")
    if not isinstance(link, h5py.HardLink):
        raise _fail(where, f"{name!r} is a link; only plain datasets are accepted")
    obj = fh.get(name)
    if not isinstance(obj, h5py.Dataset):
        raise _fail(where, f"{name!r} is not a dataset")
    dt = obj.dtype
    if dt.kind not in kinds or dt.fields is not None or dt.subdtype is not None or h5py.check_dtype(vlen=dt):
        expected = expected or ("64-byte strings (S64)" if kinds == "S" else "numbers")
        raise _fail(where, f"dataset {name!r} has dtype {dt}; expected plain {expected}")
    if len(obj.shape) != ndim:
        raise _fail(where, f"dataset {name!r} has shape {obj.shape}, expected {ndim} dimension(s)")
    if obj.is_virtual or obj.external:
        raise _fail(where, f"dataset {name!r} refers to other files; only self-contained datasets are accepted")
    _check_declared_size(obj, name, where)
    return obj


#: Most rows a score file may declare (HDF5 lets a tiny file declare 2^40 unwritten rows).
MAX_ROWS = 2**31 - 1


def _memory_budget() -> int:
    """Bytes a score file may make the reader allocate: half of this machine's memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _check_declared_size(obj: h5py.Dataset, name: str, where: str) -> None:
    """Refuse, before anything is allocated, a dataset whose declared shape would not fit in memory."""
    declared = obj.dtype.itemsize
    for side in obj.shape:
        declared *= int(side)
    if (obj.shape and obj.shape[0] > MAX_ROWS) or declared > _memory_budget():
        raise _fail(where, f"dataset {name!r} declares shape {obj.shape} ({declared / 2**30:.1f} GiB as "
                           f"{obj.dtype}); refusing to read more than {MAX_ROWS} rows or "
                           f"{_memory_budget() / 2**30:.1f} GiB (half of this machine's memory)")


def _read_augmented(fh: h5py.File, where: str) -> dict[str, h5py.Dataset]:
    """The datasets of the optional ``augmented`` group (checked, not yet read); {} without it."""
    link = fh.get(AUGMENTED, getlink=True)
    if link is None:
        return {}
    if not isinstance(link, h5py.HardLink) or not isinstance(fh.get(AUGMENTED), h5py.Group):
        raise _fail(where, f"{AUGMENTED!r} must be a plain group (not a link or a dataset)")
    feats = _read_dataset(fh, f"{AUGMENTED}/features", where, "f", 2)
    src = _read_dataset(fh, f"{AUGMENTED}/source", where, "S", 1, "fixed-length byte strings (S)")
    _check_augmented_size(feats.shape[0], src.dtype.itemsize, where)  # before anything is read into memory
    if src.shape[0] != feats.shape[0]:
        raise _fail(where, f"dataset '{AUGMENTED}/source' has {src.shape[0]} rows, "
                           f"'{AUGMENTED}/features' has {feats.shape[0]}")
    return {"augmented_features": feats, "augmented_source": src}


def read_scores(path: str | os.PathLike) -> ScoreTable:
    """Read and fully validate a score file; raise OsmaError naming the file and the problem."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise _fail(where, "file not found")
    if not h5py.is_hdf5(path):
        raise _fail(where, "not an HDF5 file (a score file is scores.h5, docs/EVALUATION.md)")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise _fail(where, f"cannot be opened as HDF5 ({exc})") from None
    with fh:
        missing = [a for a in _ROOT_ATTRS if a not in fh.attrs]
        if missing:
            raise _fail(where, f"missing root attribute(s) {', '.join(missing)}")
        try:
            attrs = {a: fh.attrs[a] for a in _ROOT_ATTRS}
        except (OSError, TypeError, ValueError) as exc:
            raise _fail(where, f"unreadable root attributes ({exc})") from None
        version = _check_int(attrs["schema_version"], "schema_version", where, 0)
        if version != SCHEMA_VERSION:
            raise _fail(where, f"schema_version {version} is not supported (this version reads {SCHEMA_VERSION})")
        num_classes = _check_int(attrs["num_classes"], "num_classes", where, 1)
        datasets = {}
        for name, kinds, ndim in (("index", "iu", 1), ("sha256", "S", 1), ("group", "iu", 1),
                                  ("label", "iu", 1), ("logits", "f", 2), ("score", "f", 1)):
            datasets[name] = _read_dataset(fh, name, where, kinds, ndim)
        if "features" in fh:
            datasets["features"] = _read_dataset(fh, "features", where, "f", 2)
        n = datasets["index"].shape[0]
        for name, ds in datasets.items():
            if ds.shape[0] != n:
                raise _fail(where, f"dataset {name!r} has {ds.shape[0]} rows, 'index' has {n}")
        augmented = _read_augmented(fh, where)
        if augmented and "features" not in datasets:
            raise _needs_features(where)
        if augmented and augmented["augmented_features"].shape[1] != datasets["features"].shape[1]:
            raise _fail(where, f"'{AUGMENTED}/features' has {augmented['augmented_features'].shape[1]} columns, "
                               f"'features' has {datasets['features'].shape[1]}")
        datasets.update(augmented)
        total = sum(ds.dtype.itemsize * int(np.prod(ds.shape, dtype=np.float64)) for ds in datasets.values())
        if total > _memory_budget():
            raise _fail(where, f"its datasets declare {total / 2**30:.1f} GiB together; refusing to read more "
                               f"than {_memory_budget() / 2**30:.1f} GiB (half of this machine's memory)")
        if datasets["sha256"].dtype.itemsize != 64:
            raise _fail(where, f"dataset 'sha256' has dtype {datasets['sha256'].dtype}, expected S64")
        if datasets["logits"].shape[1] != num_classes:
            raise _fail(where, f"'logits' has {datasets['logits'].shape[1]} columns, num_classes is {num_classes}")
        try:
            arrays = {name: ds[()] for name, ds in datasets.items()}
        except (OSError, TypeError, ValueError) as exc:
            raise _fail(where, f"unreadable data ({exc})") from None
    table = ScoreTable(
        index=arrays["index"].astype(np.int64),
        sha256=arrays["sha256"].astype("S64"),
        group=arrays["group"].astype(np.int64),
        label=arrays["label"].astype(np.int64),
        logits=arrays["logits"].astype(np.float32),
        score=arrays["score"].astype(np.float64),
        features=arrays["features"].astype(np.float32) if "features" in arrays else None,
        augmented=AugmentedFeatures(features=arrays["augmented_features"].astype(np.float32),
                                    source=arrays["augmented_source"]) if augmented else None,
        split=_check_int(attrs["split"], "split", where, 1),
        dataset_sha256=_check_text(attrs["dataset_sha256"], "dataset_sha256", where),
        method=_check_text(attrs["method"], "method", where),
        num_classes=num_classes,
        schema_version=version,
        source=where,
    )
    _validate(table, where)
    table.group = table.group.astype(np.int8)
    return table


# --------------------------------------------------------------------------- against the dataset


def validate_against_split(table: ScoreTable, data_root: str | os.PathLike, split: int):
    """Check that ``table`` is exactly the test set of ``split`` of the dataset at ``data_root``.

    Dataset version (content SHA-256), split number and class count must match, and every group
    must hold exactly one row per image of its partition, with the partition's label and the
    image store's content SHA-256. Returns the split's :class:`osma_bench.data.SplitInfo`.
    """
    from osma_bench.data import OSMADataset, load_card, read_split

    where = table.source
    card = load_card(data_root)
    if table.dataset_sha256 != card.get("content_sha256"):
        raise _fail(where, f"made for dataset version {table.dataset_sha256[:12]}..., but {data_root} is "
                           f"version {str(card.get('content_sha256'))[:12]}... (content_sha256 differs)")
    if table.split != int(split):
        raise _fail(where, f"holds scores for split {table.split}, not split {split}")
    info = read_split(data_root, split)
    if table.num_classes != len(info.known_classes):
        raise _fail(where, f"num_classes is {table.num_classes}, split {split} has "
                           f"{len(info.known_classes)} known classes")
    for code, part in enumerate(GROUP_PARTITIONS):
        want_index, want_label = info.partitions.get(part, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        rows = table.rows(code)
        have = table.index[rows]
        missing = np.setdiff1d(want_index, have)
        extra = np.setdiff1d(have, want_index)
        name = GROUPS[code]
        if missing.size:
            raise _fail(where, f"group {name!r} lacks rows for {missing.size} of the {want_index.size} images of "
                               f"partition {part!r} (e.g. image index {int(missing[0])})")
        if extra.size:
            raise _fail(where, f"group {name!r} has {extra.size} rows for images not in partition {part!r} "
                               f"(e.g. image index {int(extra[0])})")
        if not want_index.size:
            continue
        pos = np.argsort(want_index)
        at = pos[np.searchsorted(want_index[pos], have)]
        wrong = np.flatnonzero(table.label[rows] != want_label[at])
        if wrong.size:
            i = rows[wrong[0]]
            raise _fail(where, f"group {name!r}: image index {int(table.index[i])} has label "
                               f"{int(table.label[i])}, the split says {int(want_label[at[wrong[0]]])}")
        store_sha = np.asarray(OSMADataset(data_root, split, part).sha256(), dtype="S64")
        bad = np.flatnonzero(table.sha256[rows] != store_sha[at])
        if bad.size:
            i = rows[bad[0]]
            raise _fail(where, f"group {name!r}: image index {int(table.index[i])} has SHA-256 "
                               f"{table.sha256[i].decode()[:12]}..., the image store has "
                               f"{store_sha[at[bad[0]]].decode()[:12]}... ({bad.size} rows differ)")
    return info
