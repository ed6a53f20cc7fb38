"""Turn a user's copy of the POSE annotation files into a :class:`BuildPlan`.

The annotation files (``PATH<TAB>LABEL`` a line; PATH relative to the folder that holds
``dataset/``) and their label semantics are described in ``docs/DATA.md``; the protocol's class
lists and file locations are the project's own ``datasets/pose.yaml``. Every problem found here
(a missing annotation file is fatal; malformed lines, labels outside the class list, a path
listed twice in one file, an image whose class differs between splits) is collected and
reported together.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from osma_bench.data.build import BuildPlan, Item
from osma_bench.data.yamlfile import load_yaml
from osma_bench.errors import OsmaError
from osma_bench.protocol import ALL_PARTITIONS, UNKNOWN_GROUPS
from osma_bench.validate import Fields

_LABEL = re.compile(r"-?[0-9]+")
DEFAULT_PROTOCOL = Path(__file__).resolve().parents[2] / "datasets" / "pose.yaml"


def load_protocol(path: str | os.PathLike | None = None) -> dict:
    """Read the POSE protocol definition (``datasets/pose.yaml`` unless ``path`` is given)."""
    path = Path(path) if path is not None else DEFAULT_PROTOCOL
    if not path.is_file():
        raise OsmaError(f"{path}: protocol file not found (pass --protocol datasets/pose.yaml from the repository)")
    proto = load_yaml(path, "protocol file")
    for key in ("classes", "splits", "annotation_files"):
        if not isinstance(proto, dict) or key not in proto:
            raise OsmaError(f"{path}: missing {key!r}")
    f = Fields(path)
    for i, cls in enumerate(f.seq(proto["classes"], "classes", 1)):
        f.string(f.key(cls, "name", f"classes[{i}]"), f"classes[{i}].name")
    for k, spec in f.mapping(proto["splits"], "splits").items():
        f.strings(f.key(spec, "known", f"splits.{k}"), f"splits.{k}.known", 1)
        for g in UNKNOWN_GROUPS:
            f.strings(f.key(spec, f"unknown_{g}", f"splits.{k}"), f"splits.{k}.unknown_{g}")
    for part, template in f.mapping(proto["annotation_files"], "annotation_files").items():
        f.string(template, f"annotation_files.{part}")
    return proto


def find_annotation_dir(path: str | os.PathLike) -> Path:
    """The POSE ``dataset/`` folder: ``path`` itself or ``path/dataset``."""
    path = Path(path)
    for candidate in (path, path / "dataset"):
        if candidate.is_dir() and any(candidate.glob("split*_train")):
            return candidate
    raise OsmaError(f"{path}: no POSE annotation folders (split<k>_train/...) here or under {path / 'dataset'}")


def clean_path(raw: str) -> str:
    """Annotation path as stored: leading ``./`` removed, POSIX separators."""
    raw = raw.replace("\\", "/")
    while raw.startswith("./"):
        raw = raw[2:]
    return raw


def read_annotation_file(path: Path, num_labels: int, problems: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """``(path, label)`` pairs of one file; bad lines are added to ``problems`` and left out."""
    pairs: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (editors on Windows write one)
        raw = raw[3:]
    for lineno, line_bytes in enumerate(raw.splitlines(), 1):
        where = f"{path}:{lineno}"
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append((where, f"not UTF-8 text (byte {exc.start}: {line_bytes[exc.start:exc.start + 1]!r})"))
            continue
        text = line.strip()
        if not text:
            continue
        fields = text.split("\t")
        if len(fields) != 2 or not fields[0] or not _LABEL.fullmatch(fields[1].strip()):
            problems.append((where, f"malformed annotation line {text[:80]!r} (expected PATH<TAB>LABEL)"))
            continue
        label = int(fields[1])
        if not 0 <= label < num_labels:
            problems.append((where, f"label {label} outside the class list (0..{num_labels - 1})"))
            continue
        image = clean_path(fields[0])
        if image in seen:
            problems.append((where, f"{image} listed twice (first on line {seen[image]})"))
            continue
        seen[image] = lineno
        pairs.append((image, label))
    return pairs


def pose_plan(
    root: str | os.PathLike,
    annotations: str | os.PathLike,
    splits: list[int],
    protocol: dict,
    name: str = "osma",
    command: str = "",
) -> BuildPlan:
    """Build plan for the POSE protocol splits ``splits``."""
    root = Path(root)
    if not root.is_dir():
        raise OsmaError(f"{root}: image root folder not found")
    ann_dir = find_annotation_dir(annotations)
    classes = [dict(c) for c in protocol["classes"]]
    class_id = {c["name"]: i for i, c in enumerate(classes)}
    unseen_prefixes = [clean_path(p) for p in protocol.get("unseen_real_prefixes", [])]
    problems: list[tuple[str, str]] = []
    missing = []
    plan_splits: dict[int, dict] = {}
    image_class: dict[str, tuple[int, str]] = {}
    order: list[str] = []
    for k in splits:
        spec = protocol["splits"].get(k) or protocol["splits"].get(str(k))
        if spec is None:
            raise OsmaError(f"split {k} is not in the protocol (it has {', '.join(map(str, protocol['splits']))})")
        known = list(spec["known"])
        unknown = {g: list(spec[f"unknown_{g}"]) for g in UNKNOWN_GROUPS}
        for cls in known + [c for g in UNKNOWN_GROUPS for c in unknown[g]]:
            if cls not in class_id:
                raise OsmaError(f"protocol split {k}: class {cls!r} has no entry in 'classes'")
        lists = {p: known for p in ("train", "val", "test")}
        lists.update({f"out_{g}": unknown[g] for g in UNKNOWN_GROUPS})
        lists["out"] = [c for g in UNKNOWN_GROUPS for c in unknown[g]]
        partitions = {}
        for part in ALL_PARTITIONS:
            template = protocol["annotation_files"].get(part)
            if template is None:
                continue
            path = ann_dir / template.format(k=k)
            if not path.is_file():
                missing.append(str(path))
                continue
            pairs = read_annotation_file(path, len(lists[part]), problems)
            partitions[part] = pairs
            for image, label in pairs:
                cls = lists[part][label]
                previous = image_class.get(image)
                if previous is None:
                    image_class[image] = (class_id[cls], f"{path.name}")
                    order.append(image)
                elif previous[0] != class_id[cls]:
                    problems.append((f"{path}", f"{image} is {cls} here but {classes[previous[0]]['name']} "
                                                f"in {previous[1]}"))
        if "out" in partitions and all(f"out_{g}" in partitions for g in UNKNOWN_GROUPS):
            out_file = ann_dir / protocol["annotation_files"]["out"].format(k=k)
            problems.extend(_out_consistency(k, partitions, unknown, out_file))
        plan_splits[k] = {"known": known, "unknown": unknown, "partitions": partitions}
    if missing:
        raise OsmaError("annotation file(s) not found:\n" + "\n".join(f"  {m}" for m in missing))
    items = [
        Item(path, image_class[path][0], unseen_real=any(path.startswith(p) for p in unseen_prefixes))
        for path in order
    ]
    return BuildPlan(
        name=name, root=root, classes=classes, items=items, splits=plan_splits, problems=problems,
        build_info={"command": command, "builder": "pose", "seed": None,
                    "sources": {"root": str(root), "annotations": str(ann_dir)}, "splits": list(splits)},
        extra_card={"protocol": "POSE OSMA (Yang et al., CVPR 2023)",
                    "real_sources": protocol.get("real_sources", []),
                    "unseen_real_prefixes": unseen_prefixes},
    )


def _out_consistency(k: int, partitions: dict, unknown: dict[str, list[str]], out_path: Path) -> list[tuple[str, str]]:
    """Problems where the all-unknowns list (``out``) is not exactly the per-group lists together
    (labels offset into seed + arch + dataset): an image it adds, omits or labels otherwise."""
    offsets = {g: sum(len(unknown[h]) for h in UNKNOWN_GROUPS[:i]) for i, g in enumerate(UNKNOWN_GROUPS)}
    expected = {img: lab + offsets[g] for g in UNKNOWN_GROUPS for img, lab in partitions[f"out_{g}"]}
    listed = dict(partitions["out"])
    problems = []
    for img in sorted(set(listed) - set(expected)):
        problems.append((str(out_path), f"split {k}: {img} is not in any per-group unknown list"))
    for img in sorted(set(expected) - set(listed)):
        problems.append((str(out_path), f"split {k}: {img} of a per-group unknown list is missing here"))
    for img in sorted(set(listed) & set(expected)):
        if listed[img] != expected[img]:
            problems.append((str(out_path), f"split {k}: {img} has label {listed[img]} here but "
                                            f"{expected[img]} in its per-group list"))
    return problems
