"""The schema of a dataset's own files, checked before anything reads them (docs/CONTRACTS.md
section 1): the card ``dataset.json`` with its shard entries, and the class-list attributes of
``splits.h5``. Shared by :func:`osma_bench.data.load_card`, :func:`osma_bench.data.read_split` and
``verify-data``; a bad file is one :class:`OsmaError` naming the file and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from osma_bench.data.store import SCHEMA_VERSION, UNKNOWN_GROUPS
from osma_bench.errors import OsmaError
from osma_bench.validate import Fields

#: Largest image side a card may declare (a hostile card must not make readers allocate terabytes).
MAX_IMAGE_SIZE = 4096
#: Keys every card has.
CARD_KEYS = ("schema_version", "name", "image_size", "preprocessing", "classes", "splits", "num_images",
             "shards", "splits_file", "content_sha256", "build")


def validate_card(card: Any, path: Path) -> dict:
    """``card`` (parsed ``dataset.json``) if it follows the schema, else OsmaError naming the field."""
    f = Fields(path)
    f.mapping(card, "(top level)")
    for key in CARD_KEYS:
        f.key(card, key)
    if card["schema_version"] != SCHEMA_VERSION:
        raise f.fail("schema_version", f"{SCHEMA_VERSION} (the version this osma-bench reads)",
                     card["schema_version"])
    f.name(card["name"], "name")
    f.integer(card["image_size"], "image_size", 1, MAX_IMAGE_SIZE)
    for key in ("preprocessing", "build"):
        if card[key] is not None:
            f.mapping(card[key], key)
    num_images = f.integer(card["num_images"], "num_images", 0)
    classes = f.seq(card["classes"], "classes", 1)
    names = []
    for i, cls in enumerate(classes):
        names.append(f.string(f.key(cls, "name", f"classes[{i}]"), f"classes[{i}].name"))
    total = 0
    for i, shard in enumerate(f.seq(card["shards"], "shards")):
        where = f"shards[{i}]"
        f.file_name(f.key(shard, "file", where), f"{where}.file")
        f.sha256(f.key(shard, "sha256", where), f"{where}.sha256")
        total += f.integer(f.key(shard, "num_images", where), f"{where}.num_images", 0)
    if total != num_images:
        raise f.fail("num_images", f"the sum of the shards' num_images ({total})", num_images)
    splits_file = card["splits_file"]
    f.file_name(f.key(splits_file, "file", "splits_file"), "splits_file.file")
    f.sha256(f.key(splits_file, "sha256", "splits_file"), "splits_file.sha256")
    f.sha256(card["content_sha256"], "content_sha256")
    known_names = set(names)
    for k, meta in f.mapping(card["splits"], "splits").items():
        where = f"splits.{k}"
        if not k.isdigit() or int(k) < 1:
            raise f.fail("splits", "split numbers 1, 2, ... as keys", k)
        for cls in f.strings(f.key(meta, "known_classes", where), f"{where}.known_classes", 1):
            if cls not in known_names:
                raise f.fail(f"{where}.known_classes", "names from classes", cls)
        unknown = f.mapping(f.key(meta, "unknown", where), f"{where}.unknown")
        for g, members in unknown.items():
            if g not in UNKNOWN_GROUPS:
                raise f.fail(f"{where}.unknown", f"groups among {', '.join(UNKNOWN_GROUPS)}", g)
            f.strings(members, f"{where}.unknown.{g}")
        if "counts" in meta:
            f.mapping(meta["counts"], f"{where}.counts")
    return card


def split_class_lists(attrs: Any, path: Path, k: int) -> tuple[list[str], dict[str, list[str]]]:
    """The known and unknown class lists of split ``k`` from its ``splits.h5`` group attributes."""
    f = Fields(path)

    def one(key: str, min_len: int) -> list[str]:
        where = f"split{k}.attrs.{key}"
        if key not in attrs:
            raise OsmaError(f"{path}: field {where}: missing")
        raw = attrs[key]
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        if not isinstance(raw, str):
            raise f.fail(where, "a JSON list of class names", type(raw).__name__)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise f.fail(where, "a JSON list of class names", raw) from None
        return f.strings(value, where, min_len)

    return one("known_classes", 1), {g: one(f"unknown_{g}", 0) for g in UNKNOWN_GROUPS}
