"""``build-data custom``: a researcher's own benchmark from a YAML manifest.

The manifest (worked example: ``datasets/example_manifest.yaml``; reference: ``docs/DATA.md``)
names image sources (a folder or a glob under ``root``) with their class, real or fake,
architecture, seed and training data; per-class counts for train / val / test; and splits, each
with its known classes and the unknown groups (seed / arch / dataset, plus ``real``: real sources
used only as unseen real test images). Images are drawn per split and class with a generator
seeded by ``(seed, split, class)``: the same manifest gives the same dataset.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from osma_bench.data.build import BuildPlan, Item
from osma_bench.data.card import MAX_IMAGE_SIZE
from osma_bench.data.yamlfile import load_yaml
from osma_bench.errors import OsmaError
from osma_bench.protocol import UNKNOWN_GROUPS
from osma_bench.validate import Fields

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
SOURCE_KEYS = {"name", "class", "path", "real", "architecture", "seed", "training_data"}
TOP_KEYS = {"name", "root", "image_size", "seed", "normalize", "counts", "sources", "splits", "description"}
#: Largest per-class count a manifest may ask for.
MAX_COUNT = 10_000_000


def load_manifest(path: str | os.PathLike) -> dict:
    """Read and check a manifest (bounded, strict YAML; typed fields); errors name the file and entry."""
    path = Path(path)
    spec = load_yaml(path, "manifest")
    if not isinstance(spec, dict):
        raise OsmaError(f"{path}: a manifest is a mapping with name, sources, counts and splits")
    unknown_keys = {str(k) for k in spec} - TOP_KEYS
    if unknown_keys:
        raise OsmaError(f"{path}: unknown key(s) {sorted(unknown_keys)}")
    for key in ("name", "sources", "splits", "counts"):
        if key not in spec:
            raise OsmaError(f"{path}: missing {key!r}")
    f = Fields(path)
    f.name(spec["name"], "name")
    if "root" in spec:
        f.string(spec["root"], "root")
    if "image_size" in spec:
        f.integer(spec["image_size"], "image_size", 1, MAX_IMAGE_SIZE)
    if "seed" in spec:
        f.integer(spec["seed"], "seed", 0, 2**63 - 1)
    for key in ("normalize", "description"):
        if spec.get(key) is not None:
            f.string(spec[key], key)
    for i, src in enumerate(f.seq(spec["sources"], "sources", 1)):
        where = f"sources[{i}]"
        if not isinstance(src, dict) or "class" not in src or "path" not in src:
            raise OsmaError(f"{path}: sources[{i}] needs 'class' and 'path'")
        extra = {str(k) for k in src} - SOURCE_KEYS
        if extra:
            raise OsmaError(f"{path}: sources[{i}] has unknown key(s) {sorted(extra)}")
        for key in ("class", "path", "name"):
            if key in src:
                f.string(src[key], f"{where}.{key}")
        if "real" in src and not isinstance(src["real"], bool):
            raise f.fail(f"{where}.real", "true or false", src["real"])
        if src.get("seed") is not None:
            f.integer(src["seed"], f"{where}.seed")
        for key in ("architecture", "training_data"):
            if src.get(key) is not None:
                f.string(src[key], f"{where}.{key}")
    _counts(spec["counts"], f"{path}: counts")
    for k, split in enumerate(f.seq(spec["splits"], "splits", 1)):
        where = f"splits[{k}]"
        f.mapping(split, where)
        f.strings(f.key(split, "known", where), f"{where}.known", 1)
        groups = split.get("unknown") or {}
        f.mapping(groups, f"{where}.unknown")
        for g, members in groups.items():
            f.strings(members, f"{where}.unknown.{g}")
    return spec


def _counts(value, where: str) -> dict[str, int]:
    if not isinstance(value, dict) or not all(k in value for k in ("train", "val", "test")):
        raise OsmaError(f"{where}: needs train, val and test counts")
    out = {}
    for k, v in value.items():
        if k not in ("train", "val", "test", "unknown"):
            raise OsmaError(f"{where}: unknown key {k!r}")
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_COUNT:
            raise OsmaError(f"{where}.{k}: must be an integer from 0 to {MAX_COUNT}, got {v!r}")
        out[k] = v
    out.setdefault("unknown", out["test"])
    return out


def _files(root: Path, pattern: str, where: str, problems: list[tuple[str, str]]) -> list[str]:
    """Image files of one source (a folder, searched recursively, or a glob under ``root``).

    Adds to ``problems`` (and leaves out) what cannot become a stored image: a symlink loop or a
    dangling link, a file name that is not valid UTF-8, or a pattern that matches nothing.
    """
    if os.path.isabs(pattern) or ".." in Path(pattern).parts:
        raise OsmaError(f"{where}: path {pattern!r} must stay under the manifest root {root}")
    target = root / pattern
    if target.is_dir():
        candidates = [p for p in _walk(target, problems)
                      if p.suffix.lower() in IMAGE_SUFFIXES or (p.is_symlink() and not p.exists())]
    else:
        candidates = list(root.glob(pattern))
    found = []
    for p in candidates:
        rel = p.relative_to(root).as_posix()
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            problems.append((os.fsencode(rel).decode("utf-8", "backslashreplace"),
                             "file name is not valid UTF-8; rename the file"))
            continue
        if p.is_symlink() and not p.exists():
            problems.append((rel, "symbolic link that leads nowhere (a loop or a missing target)"))
            continue
        if p.is_file():
            found.append(rel)
    if not found:
        problems.append((where, f"no files match {pattern!r} under {root}"))
    return sorted(found)


def _walk(folder: Path, problems: list[tuple[str, str]]) -> list[Path]:
    """Every entry under ``folder`` (symbolic links to folders are not followed: no loops)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False,
                                                onerror=lambda e: problems.append((str(e.filename), e.strerror))):
        base = Path(dirpath)
        out.extend(base / name for name in filenames)
        out.extend(base / name for name in dirnames if (base / name).is_symlink())
    return out


def _rng(seed: int, k: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, k, zlib.crc32(name.encode())])


def manifest_plan(spec: dict, manifest_path: str | os.PathLike, command: str = "", name: str | None = None) -> BuildPlan:
    """Build plan for a checked manifest."""
    manifest_path = Path(manifest_path)
    root = (manifest_path.parent / str(spec.get("root", "."))).resolve()
    if not root.is_dir():
        raise OsmaError(f"{manifest_path}: root folder {root} not found")
    seed = int(spec.get("seed", 0))
    base_counts = _counts(spec["counts"], f"{manifest_path}: counts")

    classes: list[dict] = []
    class_id: dict[str, int] = {}
    source_files: dict[str, list[str]] = {}  # source name -> files
    class_files: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    source_class: dict[str, str] = {}
    input_problems: list[tuple[str, str]] = []
    for i, src in enumerate(spec["sources"]):
        where = f"{manifest_path}: sources[{i}] ({src['class']})"
        cls = str(src["class"])
        sname = str(src.get("name", cls))
        if sname in source_files:
            raise OsmaError(f"{where}: source name {sname!r} used twice (give each source a distinct 'name')")
        meta = {"name": cls, "real": bool(src.get("real", False)), "architecture": src.get("architecture"),
                "seed": src.get("seed"), "training_data": src.get("training_data"), "source": str(src["path"])}
        if cls not in class_id:
            class_id[cls] = len(classes)
            classes.append(meta)
        elif classes[class_id[cls]]["real"] != meta["real"]:
            raise OsmaError(f"{where}: class {cls!r} is both real and fake")
        else:
            classes[class_id[cls]]["source"] += f", {src['path']}"
        files = _files(root, str(src["path"]), where, input_problems)
        for f in files:
            if f in owner:
                raise OsmaError(f"{where}: {f} is also matched by source {owner[f]!r}")
            owner[f] = sname
        source_files[sname] = files
        source_class[sname] = cls
        class_files.setdefault(cls, []).extend(files)


    def short(message: str) -> None:
        """A class with too few images: a consequence of the input problems when there are some
        (listed with them by the build), else the manifest's own error."""
        if not input_problems:
            raise OsmaError(message)
        input_problems.append((message.split(": ", 1)[0], message.split(": ", 1)[1]))

    plan_splits: dict[int, dict] = {}
    unseen_real_files: set[str] = set()
    selected: set[str] = set()
    for k, split in enumerate(spec["splits"], 1):
        where = f"{manifest_path}: splits[{k - 1}]"
        if not isinstance(split, dict) or "known" not in split:
            raise OsmaError(f"{where}: needs 'known' (list of classes)")
        known = [str(c) for c in split["known"]]
        groups = split.get("unknown", {}) or {}
        extra = set(groups) - set(UNKNOWN_GROUPS) - {"real"}
        if extra:
            raise OsmaError(f"{where}: unknown group(s) {sorted(extra)}; use seed, arch, dataset, real")
        unknown = {g: [str(c) for c in groups.get(g, [])] for g in UNKNOWN_GROUPS}
        counts = _counts(split["counts"], f"{where}.counts") if "counts" in split else base_counts
        for cls in known + [c for g in UNKNOWN_GROUPS for c in unknown[g]]:
            if cls not in class_id:
                raise OsmaError(f"{where}: class {cls!r} has no source")
        listed = known + [c for g in UNKNOWN_GROUPS for c in unknown[g]]
        if len(set(listed)) != len(listed):
            raise OsmaError(f"{where}: a class is listed twice among known and unknown")
        unseen_sources = [str(s) for s in groups.get("real", [])]
        pooled = {c: list(class_files[c]) for c in known}
        for sname in unseen_sources:
            if sname not in source_files:
                raise OsmaError(f"{where}: unknown real source {sname!r} (name a source)")
            cls = source_class[sname]
            if not classes[class_id[cls]]["real"] or cls not in known:
                raise OsmaError(f"{where}: unseen real source {sname!r} must belong to a known real class")
            pooled[cls] = [f for f in pooled[cls] if owner[f] != sname]
        partitions: dict[str, list[tuple[str, int]]] = {p: [] for p in ("train", "val", "test")}
        for label, cls in enumerate(known):
            need = counts["train"] + counts["val"] + counts["test"]
            files = pooled[cls]
            if len(files) < need:
                short(f"{where}: class {cls!r} has {len(files)} image(s), needs {need} "
                      f"(train {counts['train']} + val {counts['val']} + test {counts['test']})")
            order = [files[i] for i in _rng(seed, k, cls).permutation(len(files))[:need]]
            cuts = np.cumsum([0, counts["train"], counts["val"], counts["test"]])
            for part, lo, hi in zip(("train", "val", "test"), cuts[:-1], cuts[1:], strict=True):
                partitions[part].extend((f, label) for f in order[lo:hi])
        for sname in unseen_sources:
            files = source_files[sname]
            n = min(counts["unknown"], len(files))
            chosen = [files[i] for i in _rng(seed, k, "real:" + sname).permutation(len(files))[:n]]
            label = known.index(source_class[sname])
            partitions["test"].extend((f, label) for f in chosen)
            unseen_real_files.update(chosen)
        for g in UNKNOWN_GROUPS:
            part = partitions.setdefault(f"out_{g}", [])
            for label, cls in enumerate(unknown[g]):
                files = class_files[cls]
                if len(files) < counts["unknown"]:
                    short(f"{where}: unknown class {cls!r} has {len(files)} image(s), needs {counts['unknown']}")
                part.extend((files[i], label) for i in _rng(seed, k, cls).permutation(len(files))[:counts["unknown"]])
        for lines in partitions.values():
            selected.update(f for f, _ in lines)
        plan_splits[k] = {"known": known, "unknown": unknown, "partitions": partitions}

    file_class = {f: cls for cls, files in class_files.items() for f in files}
    items = [Item(f, class_id[file_class[f]], unseen_real=f in unseen_real_files) for f in sorted(selected)]
    return BuildPlan(
        name=name or str(spec["name"]), root=root, classes=classes, items=items, splits=plan_splits,
        build_info={"command": command, "builder": "custom", "seed": seed,
                    "sources": {"manifest": str(manifest_path), "root": str(root)}},
        extra_card={"manifest": spec}, problems=input_problems,
    )

