"""The shortcut audit: can original file format or size alone tell the classes apart?

Per class it lists the mix of original formats and sizes. Flags are raised, per group of images
(the whole store and each split's training partition), when

- one format or size value holds only real or only fake images (at least ``MIN_SHARE`` of that
  side and ``MIN_COUNT`` images), e.g. "every JPEG is real" in POSE's split1 train;
- the rule "predict the majority label of the image's format (or size)" reaches a balanced
  accuracy well above chance: real vs fake at least 0.75, or over the known classes at least
  twice chance and chance + 0.2.

A model can learn such a cue instead of the generator's fingerprint; ``--normalize jpeg:Q``
gives every image the same compression before preprocessing.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

MIN_COUNT = 20
MIN_SHARE = 0.05
REAL_FAKE_FLAG = 0.75


@dataclass
class AuditReport:
    """Per-class format and size mix, and the shortcut flags."""

    rows: list[dict] = field(default_factory=list)  # class, real, n, formats, sizes
    flags: list[str] = field(default_factory=list)
    normalize: str | None = None


def _balanced_accuracy(values: np.ndarray, labels: np.ndarray) -> float:
    """Balanced accuracy of predicting ``labels`` by the majority label of each value."""
    predict = {}
    for v in np.unique(values):
        lab, counts = np.unique(labels[values == v], return_counts=True)
        predict[v] = lab[np.argmax(counts)]
    guessed = np.asarray([predict[v] for v in values])
    recalls = [float(np.mean(guessed[labels == c] == c)) for c in np.unique(labels)]
    return float(np.mean(recalls))


def _flags(scope: str, fmt: np.ndarray, size: np.ndarray, is_real: np.ndarray, cls: np.ndarray) -> list[str]:
    flags = []
    n_real, n_fake = int(is_real.sum()), int((~is_real).sum())
    for feature, values in (("format", fmt), ("size", size)):
        if n_real and n_fake:
            for v in np.unique(values):
                hit = values == v
                r, f = int((hit & is_real).sum()), int((hit & ~is_real).sum())
                if r >= MIN_COUNT and f == 0 and r >= MIN_SHARE * n_real:
                    flags.append(f"{scope}: every {feature} {v} image is real ({r} images, {r / n_real:.0%} of real)")
                if f >= MIN_COUNT and r == 0 and f >= MIN_SHARE * n_fake:
                    flags.append(f"{scope}: every {feature} {v} image is fake ({f} images, {f / n_fake:.0%} of fake)")
            acc = _balanced_accuracy(values, is_real)
            if acc >= REAL_FAKE_FLAG:
                flags.append(f"{scope}: {feature} alone separates real from fake with balanced accuracy {acc:.2f}")
        k = len(np.unique(cls))
        if k > 2:
            chance = 1.0 / k
            acc = _balanced_accuracy(values, cls)
            if acc >= 2 * chance and acc >= chance + 0.2:
                flags.append(f"{scope}: {feature} alone predicts the {k} classes with balanced accuracy "
                             f"{acc:.2f} (chance {chance:.2f})")
    return flags


def audit_records(groups: dict[str, dict[str, np.ndarray]], class_names: list[str], real: list[bool],
                  normalize: str | None = None) -> AuditReport:
    """Audit from columns. ``groups[scope]`` has ``class_id``, ``format`` and ``size`` arrays;
    the first scope is also used for the per-class table."""
    report = AuditReport(normalize=normalize)
    first = next(iter(groups.values()))
    for cid, name in enumerate(class_names):
        hit = first["class_id"] == cid
        if not hit.any():
            continue
        report.rows.append({
            "class": name, "real": real[cid], "n": int(hit.sum()),
            "formats": dict(Counter(first["format"][hit].tolist()).most_common()),
            "sizes": dict(Counter(first["size"][hit].tolist()).most_common(3)),
        })
    for scope, cols in groups.items():
        if not len(cols["class_id"]):
            continue
        is_real = np.asarray(real)[cols["class_id"]]
        report.flags.extend(_flags(scope, cols["format"], cols["size"], is_real, cols["class_id"]))
    return report


def audit_dataset(root: str | os.PathLike) -> AuditReport:
    """Audit a built dataset: the whole store and each split's training partition."""
    from osma_bench.data.reader import load_card, read_split

    root = Path(root)
    card = load_card(root)
    cls, fmt, size = [], [], []
    for shard in card["shards"]:
        with h5py.File(root / shard["file"], "r") as fh:
            cls.append(fh["class_id"][:].astype(np.int64))
            fmt.append(np.char.decode(fh["orig_format"][:], "ascii"))
            w, h = fh["orig_width"][:], fh["orig_height"][:]
            size.append(np.char.add(np.char.add(w.astype(str), "x"), h.astype(str)))
    cols = {"class_id": np.concatenate(cls) if cls else np.zeros(0, np.int64),
            "format": np.concatenate(fmt) if fmt else np.zeros(0, str),
            "size": np.concatenate(size) if size else np.zeros(0, str)}
    groups = {"all images": cols}
    for k in sorted(card["splits"], key=int):
        index, _ = read_split(root, int(k)).partitions["train"]
        groups[f"split{k} train"] = {key: value[index] for key, value in cols.items()}
    names = [c["name"] for c in card["classes"]]
    real = [bool(c["real"]) for c in card["classes"]]
    normalize = (card.get("preprocessing") or {}).get("normalize")
    report = audit_records(groups, names, real, normalize)
    if normalize:
        report.flags = [f + f" (the stored pixels were re-encoded with --normalize {normalize})" for f in report.flags]
    return report


def audit_pose_annotations(root: str | os.PathLike, annotations: str | os.PathLike, splits: list[int],
                           protocol_path: str | os.PathLike | None = None) -> AuditReport:
    """Audit the training partitions of POSE annotation files before building (reads image headers only)."""
    from PIL import Image

    from osma_bench.data.build import resolve_under
    from osma_bench.data.pose import load_protocol, pose_plan

    plan = pose_plan(root, annotations, splits, load_protocol(protocol_path))
    info: dict[str, tuple[str, str]] = {}
    groups = {}
    for k, split in sorted(plan.splits.items()):
        cls, fmt, size = [], [], []
        known = split["known"]
        ids = {c["name"]: i for i, c in enumerate(plan.classes)}
        for path, label in split["partitions"].get("train", []):
            if path not in info:
                target = resolve_under(plan.root, path)
                try:
                    with Image.open(target) as img:
                        info[path] = (img.format or "UNKNOWN", f"{img.width}x{img.height}")
                except (OSError, TypeError, ValueError):
                    info[path] = ("UNREADABLE", "?")
            cls.append(ids[known[label]])
            fmt.append(info[path][0])
            size.append(info[path][1])
        groups[f"split{k} train"] = {"class_id": np.asarray(cls, np.int64), "format": np.asarray(fmt),
                                     "size": np.asarray(size)}
    names = [c["name"] for c in plan.classes]
    return audit_records(groups, names, [bool(c.get("real")) for c in plan.classes])


def format_audit(report: AuditReport, flags_only: bool = False) -> str:
    """Text for the terminal: the per-class table (unless ``flags_only``) and the flags."""
    from tabulate import tabulate

    lines = []
    if not flags_only:
        table = [[r["class"], "real" if r["real"] else "fake", r["n"],
                  ", ".join(f"{k} {v}" for k, v in r["formats"].items()),
                  ", ".join(f"{k} {v}" for k, v in r["sizes"].items())] for r in report.rows]
        lines.append(tabulate(table, headers=["class", "kind", "images", "formats", "top sizes"]))
    if report.flags:
        lines.append("shortcut audit: format or size alone tells the classes apart:")
        lines.extend(f"  warning: {f}" for f in report.flags)
        if not report.normalize:
            lines.append("  (rebuild with --normalize jpeg:Q to give every image the same compression)")
    elif not flags_only:
        lines.append("shortcut audit: no flags")
    return "\n".join(lines)
