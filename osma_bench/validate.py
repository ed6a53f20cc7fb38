"""Field checks for files the suite reads (they may be damaged or hostile): one line per problem.

Every format's validator (dataset card, ``splits.h5`` attributes, shard entries, ``metrics.json``,
``clustering.json``, checkpoints, score files) is built from these, so each bad file ends in one
:class:`OsmaError` naming the file and the field: ``<file>: field <where>: expected ..., got ...``.
:func:`safe_name` is the one check for a name read from a file that becomes part of a path.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from pathlib import Path
from typing import Any

from osma_bench.errors import OsmaError

_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_NAME = 128


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Fields:
    """Checks on one parsed file; each failure raises OsmaError naming ``path`` and the field."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def fail(self, where: str, expected: str, value: Any = None, show: bool = True) -> OsmaError:
        got = f", got {_show(value)}" if show else ""
        return OsmaError(f"{self.path}: field {where}: expected {expected}{got}")

    def mapping(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, "an object", type(value).__name__)
        return value

    def key(self, obj: Any, key: str, where: str = "") -> Any:
        obj = self.mapping(obj, where or "(top level)")
        if key not in obj:
            raise OsmaError(f"{self.path}: field {where + '.' if where else ''}{key}: missing")
        return obj[key]

    def seq(self, value: Any, where: str, min_len: int = 0) -> list:
        if not isinstance(value, list):
            raise self.fail(where, "a list", value)
        if len(value) < min_len:
            raise self.fail(where, f"at least {min_len} entr{'y' if min_len == 1 else 'ies'}", value)
        return value

    def integer(self, value: Any, where: str, lo: int | None = None, hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, "an integer", value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(where, f"an integer in {lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}",
                            value)
        return value

    def number(self, value: Any, where: str, lo: float | None = None, hi: float | None = None,
               allow_nan: bool = True) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, "a number", value)
        value = float(value)
        if math.isnan(value):
            if allow_nan:
                return value
            raise self.fail(where, "a number (not NaN)", value)
        if math.isinf(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(where, f"a finite number in {lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}",
                            value)
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, "a string", value)
        return value

    def strings(self, value: Any, where: str, min_len: int = 0) -> list[str]:
        items = self.seq(value, where, min_len)
        for i, item in enumerate(items):
            self.string(item, f"{where}[{i}]")
        return items

    def sha256(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise self.fail(where, "a SHA-256 (64 lower-case hex digits)", value)
        return value

    def name(self, value: Any, where: str) -> str:
        try:
            return safe_name(value, "")
        except OsmaError as exc:
            raise OsmaError(f"{self.path}: field {where}: {exc}") from None

    def file_name(self, value: Any, where: str) -> str:
        """A plain file name inside the dataset folder (no separators, no ``..``)."""
        return self.name(value, where)


def safe_name(value: Any, what: str = "name") -> str:
    """``value`` if it is a plain name that can be one path component, else OsmaError.

    Refused: a non-string, empty, longer than 128 characters, a path separator (``/`` or ``\\``),
    a leading ``.`` (``..``, hidden files), leading or trailing spaces, control characters.
    """
    prefix = f"{what}: " if what else ""
    if not isinstance(value, str):
        raise OsmaError(f"{prefix}expected a name (a string), got {_show(value)}")
    bad = (not value or len(value) > _MAX_NAME or value.startswith(".") or value != value.strip()
           or any(c in value for c in "/\\") or any(unicodedata.category(c)[0] == "C" for c in value))
    if bad:
        raise OsmaError(f"{prefix}{_show(value)} is not a plain name (one path component: no '/' or '\\', "
                        f"no leading '.', no control characters, 1 to {_MAX_NAME} characters)")
    return value
