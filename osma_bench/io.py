"""Small file helpers shared by every layer: atomic writes, hashing, JSON."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from osma_bench.errors import OsmaError


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it onto ``target``.

    On any exception the temporary file is removed and ``target`` is left as it was, so a reader
    never sees a half-written file; a full disk becomes one :class:`OsmaError` naming ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o644)  # mkstemp makes 0600; results and datasets are meant to be shared
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except Exception as exc:
        if is_disk_full(exc):
            tmp_path.unlink(missing_ok=True)
            raise disk_full_error(target, removed=f"the partial file was removed, {target.name} is as it "
                                                  "was") from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(target: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, raising OsmaError with the path when it is missing or malformed."""
    from osma_bench.errors import OsmaError

    path = Path(path)
    if not path.is_file():
        raise OsmaError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OsmaError(f"{path}: not valid JSON ({exc})") from None


#: errno values that mean the file system has no room left (ENOSPC, EDQUOT).
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (an OSError, or h5py's error that only carries the text) means a full disk."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    text = str(exc)
    return "No space left on device" in text or "errno = 28" in text or "Disk quota exceeded" in text


def disk_full_error(path: str | os.PathLike, needed_bytes: int | None = None, removed: str = "") -> OsmaError:
    """The one-line error for a full disk while writing ``path`` (space free now, space needed if known)."""
    from osma_bench.errors import OsmaError

    path = Path(path)
    probe = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    try:
        free = f"{shutil.disk_usage(probe).free / 2**20:.1f} MiB free there now"
    except OSError:
        free = "free space unknown"
    need = f", about {needed_bytes / 2**20:.1f} MiB needed" if needed_bytes else ""
    done = f"; {removed}" if removed else ""
    return OsmaError(f"{path}: no space left on device ({free}{need}){done}; free some space and rerun")


def ensure_room(path: str | os.PathLike, nbytes: int, removed: str = "") -> None:
    """OsmaError (a full disk, naming ``path``) unless the file system of ``path`` has ``nbytes`` free.

    For writers that cannot recover from a failed write themselves (HDF5 flushes lazily and a
    write that fails inside its caches can bring the interpreter down).
    """
    path = Path(path)
    probe = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if shutil.disk_usage(probe).free < nbytes:
        raise disk_full_error(path, nbytes, removed)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
