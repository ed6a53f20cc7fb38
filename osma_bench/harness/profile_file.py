"""A budget profile from the user's own YAML file (``osma-bench run --profile FILE.yaml``).

The file is data: read with ``yaml.safe_load``, at most ``MAX_BYTES``, and checked like the
built-in profiles (``osma_bench/harness/profiles/*.yaml``): every key of ``_PROFILE_KEYS`` present,
each with the right type and range; other keys (``width``, ``optimizer``, a method's
hyperparameter) are allowed as plain values. Any problem is one ``OsmaError`` line naming the
file and the key. Which keys to set for one's own data: docs/DATA.md, "A budget for your data".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from osma_bench.errors import OsmaError
from osma_bench.harness.config import _PROFILE_KEYS, PROFILES

MAX_BYTES = 64 * 1024
def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> bool:
    """A value ``--set`` could give: scalar, or a list of scalars."""
    scalar = (bool, int, float, str, type(None))
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


def is_profile_file(profile: str) -> bool:
    """Whether ``--profile`` names a file rather than a built-in profile (a YAML name or a path)."""
    if profile in PROFILES:
        return False
    return profile.endswith((".yaml", ".yml")) or os.sep in profile or Path(profile).is_file()


def load_profile_file(path: str | os.PathLike) -> dict[str, Any]:
    """The profile in ``path`` (without its optional ``name``), validated; OsmaError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise OsmaError(f"profile file {path}: not found")
    if path.stat().st_size > MAX_BYTES:
        raise OsmaError(f"profile file {path}: larger than {MAX_BYTES // 1024} KiB; a profile is a few lines")
    try:
        profile = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OsmaError(f"profile file {path}: not valid YAML ({first})") from None
    if not isinstance(profile, dict) or not all(isinstance(k, str) for k in profile):
        raise OsmaError(f"profile file {path}: expected a mapping of key: value lines")
    missing = [k for k in _PROFILE_KEYS if k not in profile]
    if missing:
        raise OsmaError(f"profile file {path}: missing key(s) {', '.join(missing)} (a built-in profile, e.g. "
                        "osma_bench/harness/profiles/mini.yaml, lists them all)")
    name = profile.pop("name", None)
    if name is not None and not isinstance(name, str):
        raise OsmaError(f"profile file {path}: name must be a string, got {name!r}")
    from osma_bench.harness.config import HARNESS_PARAMS

    for key, value in profile.items():
        if key in HARNESS_PARAMS:  # the one validator of the built-in profiles' keys
            HARNESS_PARAMS[key].validate(value, f"profile file {path}")
        elif not _plain(value):
            raise OsmaError(f"profile file {path}: {key} must be a number, string, boolean, null or a list of "
                            f"those, got {type(value).__name__}")
    return profile
