"""Find methods through the ``osma_bench.methods`` entry-point group (built-in and outside alike).

Run from a source tree without installing (``PYTHONPATH=<repo>``, as ``benchmarks/gpu_check.sh``
does), the package metadata that carries the built-in entry points is absent; the built-in methods
are then read from the repository's ``pyproject.toml`` (:func:`source_tree_entry_points`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, PackageNotFoundError, distribution, entry_points
from pathlib import Path

from osma_bench.errors import OsmaError
from osma_bench.methods.api import Method

ENTRY_POINT_GROUP = "osma_bench.methods"
DISTRIBUTION = "osma-bench"
#: The repository's project file, where the built-in entry points are declared.
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@dataclass(frozen=True)
class MethodInfo:
    """One registered method: its name, where it comes from, and its class once loaded."""

    name: str
    target: str
    package: str
    paper: str
    error: str | None = None


def source_tree_entry_points(pyproject: Path = PYPROJECT) -> list[EntryPoint]:
    """The built-in methods' entry points as ``pyproject.toml`` declares them, for a source tree
    used without installing; empty when the file is absent (an installed copy without it)."""
    import tomllib

    try:
        project = tomllib.loads(pyproject.read_text())
    except FileNotFoundError:
        return []
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OsmaError(f"{pyproject}: unreadable, cannot list the built-in methods ({exc})") from None
    table = project.get("project", {}).get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    return [EntryPoint(name, str(value), ENTRY_POINT_GROUP) for name, value in table.items()]


def _installed() -> bool:
    try:
        distribution(DISTRIBUTION)
    except PackageNotFoundError:
        return False
    return True


def _entry_points() -> dict:
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    if not _installed():
        for ep in source_tree_entry_points():
            found.setdefault(ep.name, ep)
    return found


def available_methods() -> list[str]:
    """Names of all registered methods, sorted."""
    return sorted(_entry_points())


def get_method(name: str) -> type[Method]:
    """Load the method class registered as ``name``; OsmaError listing known names otherwise."""
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "(none)"
        raise OsmaError(f"unknown method {name!r}; known methods: {known}")
    try:
        cls = eps[name].load()
    except Exception as exc:  # a broken plugin must say so, not crash the CLI
        raise OsmaError(f"method {name!r} ({eps[name].value}) failed to load: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise OsmaError(f"method {name!r} ({eps[name].value}) is not a subclass of osma_bench Method")
    return cls


def describe_methods() -> list[MethodInfo]:
    """Every registered method with its paper and distributing package (load errors reported)."""
    infos = []
    for name, ep in sorted(_entry_points().items()):
        package = ep.dist.name if getattr(ep, "dist", None) is not None else f"{DISTRIBUTION} (source tree)"
        try:
            cls = get_method(name)
            infos.append(MethodInfo(name, ep.value, package, cls.paper))
        except OsmaError as exc:
            infos.append(MethodInfo(name, ep.value, package, "", error=str(exc)))
    return infos
