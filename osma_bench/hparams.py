"""Declared, typed hyperparameters: the one home of what a run's settings are and how they are checked.

Every setting a run uses is declared once as an :class:`HParam`: its name, type, default, allowed
range or choices, a one-line meaning, the paper's value it stands for, and its :class:`Kind`:

- ``budget``: the profile's shared budget (image size, images per class, epochs, learning rate and
  schedule, model selection). Every method trains under the same budget; a method that departs
  from it declares a :class:`BudgetDeparture` (what, why, measured on validation).
- ``method``: a method's own hyperparameters (declared on the method class).
- ``runtime``: settings that never change a result (threads, data workers, evaluation batch size,
  what is stored for plots). They are recorded but are not part of a run's identity: changing one
  neither blocks ``--resume`` nor separates runs in the report.

The pattern follows scikit-learn's ``_parameter_constraints`` / ``validate_parameter_constraints``:
parameters are declared once and validated with one message form,
``<where> <name>: expected <what>, got <value>``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from osma_bench.errors import OsmaError


class Kind(StrEnum):
    """What a hyperparameter is part of (see the module docstring)."""

    BUDGET = "budget"
    METHOD = "method"
    RUNTIME = "runtime"


class Type(StrEnum):
    """The value types a hyperparameter may have (``--set`` strings are parsed by this type)."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    INT_LIST = "int list"
    FLOAT_LIST = "float list"
    STR_LIST = "string list"


_LISTS = (Type.INT_LIST, Type.FLOAT_LIST, Type.STR_LIST)
_ELEMENT = {Type.INT_LIST: Type.INT, Type.FLOAT_LIST: Type.FLOAT, Type.STR_LIST: Type.STR}


_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}
_NULL = {"null", "none", "~"}
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class HParam:
    """One declared hyperparameter.

    ``low``/``high`` bound numbers (and every element of a list); ``low_open``/``high_open`` make a
    bound exclusive. ``choices`` restricts strings (or numbers). ``nullable`` allows ``None``
    (``null`` on the command line). ``length`` fixes a list's length; ``min_length`` bounds it.
    ``paper`` names the paper's value this setting stands for (or how a profile scales it).
    """

    name: str
    type: Type
    default: Any
    help: str
    kind: Kind = Kind.METHOD
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    length: int | None = None
    min_length: int = 1
    paper: str = ""

    # -- describing ----------------------------------------------------------------------------

    def expected(self) -> str:
        """What a valid value looks like, in words (used in every error message)."""
        if self.choices is not None and self.type in _LISTS:
            what = f"a list of {', '.join(_show(c) for c in self.choices)}"
        elif self.choices is not None:
            what = "one of " + ", ".join(_show(c) for c in self.choices)
        else:
            article = "an" if self.type in (Type.INT, Type.INT_LIST) else "a"
            what = f"{article} {self.type.value}"
            if self.type in _LISTS:
                what += f" of {self.length} values" if self.length else ""
            bounds = self._bounds()
            if bounds:
                what += f" {bounds}" if self.type not in _LISTS else f", each {bounds}"
        return what + (" or null" if self.nullable else "")

    def _bounds(self) -> str:
        if self.low is None and self.high is None:
            return ""
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_show(self.low)}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {_show(self.high)}"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"in {left}{_show(self.low)}, {_show(self.high)}{right}"

    # -- checking ------------------------------------------------------------------------------

    def parse(self, text: str, where: str = "--set") -> Any:
        """A command-line string typed by this declaration (never guessed), then validated."""
        raw = text.strip()
        if raw.lower() in _NULL and self.nullable:
            return None
        try:
            if self.type is Type.INT:
                if not _INT.match(raw):
                    raise ValueError
                value: Any = int(raw)
            elif self.type is Type.FLOAT:
                if not _FLOAT.match(raw) and raw.lower() not in ("inf", "+inf", "-inf"):
                    raise ValueError
                value = float(raw)
            elif self.type is Type.BOOL:
                if raw.lower() in _TRUE:
                    value = True
                elif raw.lower() in _FALSE:
                    value = False
                else:
                    raise ValueError
            elif self.type is Type.STR:
                value = raw
            else:
                inner = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
                parts = [p.strip().strip("'\"") for p in inner.split(",")] if inner.strip() else []
                element = _ELEMENT[self.type]
                if element is Type.STR:
                    value = parts
                else:
                    pattern = _INT if element is Type.INT else _FLOAT
                    if any(not pattern.match(p) for p in parts):
                        raise ValueError
                    value = [int(p) if element is Type.INT else float(p) for p in parts]
        except ValueError:
            raise self.error(where, text) from None
        return self.validate(value, where)

    def validate(self, value: Any, where: str) -> Any:
        """``value`` if it satisfies the declaration (ints are accepted for floats and become
        floats); otherwise OsmaError ``<where> <name>: expected <what>, got <value>``."""
        if value is None:
            if self.nullable:
                return None
            raise self.error(where, value)
        if self.type in _LISTS:
            if isinstance(value, tuple):
                value = list(value)
            if not isinstance(value, list) or len(value) < self.min_length or (
                self.length is not None and len(value) != self.length
            ):
                raise self.error(where, value)
            element = _ELEMENT[self.type]
            checked = []
            for item in value:
                ok, item = _typed(item, element)
                if not ok or (element is not Type.STR and not self._in_range(item)):
                    raise self.error(where, value)
                if self.choices is not None and item not in self.choices:
                    raise self.error(where, value)
                checked.append(item)
            return checked
        ok, value = _typed(value, self.type)
        if not ok:
            raise self.error(where, value)
        if self.choices is not None and value not in self.choices:
            raise self.error(where, value)
        if self.type in (Type.INT, Type.FLOAT) and not self._in_range(value):
            raise self.error(where, value)
        return value

    def _in_range(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def error(self, where: str, value: Any) -> OsmaError:
        prefix = f"{where} " if where else ""
        return OsmaError(f"{prefix}{self.name}: expected {self.expected()}, got {_show(value)}")

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (for ``osma-bench methods --hparams`` and the docs)."""
        return {"name": self.name, "kind": self.kind.value, "type": self.type.value, "default": self.default,
                "allowed": self.expected(), "help": self.help, "paper": self.paper}


def _typed(value: Any, kind: Type) -> tuple[bool, Any]:
    if kind is Type.BOOL:
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, value
    if kind is Type.INT:
        return isinstance(value, int), value
    if kind is Type.FLOAT:
        if isinstance(value, int | float):
            return True, float(value)
        return False, value
    if kind is Type.STR:
        return isinstance(value, str), value
    return False, value


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


# -- constructors, one per type (read like the declarations they make) ---------------------------

def Int(name: str, default: int | None, help: str, **kw: Any) -> HParam:  # noqa: N802
    return HParam(name, Type.INT, default, help, **kw)


def Float(name: str, default: float | None, help: str, **kw: Any) -> HParam:  # noqa: N802
    return HParam(name, Type.FLOAT, default, help, **kw)


def Bool(name: str, default: bool, help: str, **kw: Any) -> HParam:  # noqa: N802
    return HParam(name, Type.BOOL, default, help, **kw)


def Choice(name: str, default: str | None, choices: Iterable[str], help: str, **kw: Any) -> HParam:  # noqa: N802
    return HParam(name, Type.STR, default, help, choices=tuple(choices), **kw)


def Str(name: str, default: str | None, help: str, **kw: Any) -> HParam:  # noqa: N802
    return HParam(name, Type.STR, default, help, **kw)


def IntList(name: str, default: list[int] | None, help: str, **kw: Any) -> HParam:  # noqa: N802
    return HParam(name, Type.INT_LIST, default, help, **kw)


def FloatList(name: str, default: list[float] | None, help: str, **kw: Any) -> HParam:  # noqa: N802
    return HParam(name, Type.FLOAT_LIST, default, help, **kw)


def StrList(name: str, default: list[str] | None, help: str, **kw: Any) -> HParam:  # noqa: N802
    return HParam(name, Type.STR_LIST, default, help, **kw)


@dataclass(frozen=True)
class BudgetDeparture:
    """A method's declared departure from the profile's shared budget: the value it uses instead,
    why, and the validation measurement that chose it (or the paper's reason)."""

    value: Any
    why: str


def infer_declaration(name: str, default: Any) -> HParam:
    """A declaration inferred from a default value, for outside methods written before declarations
    existed (only a ``defaults`` dict): the type of the default, no range."""
    if isinstance(default, bool):
        kind = Type.BOOL
    elif isinstance(default, int):
        kind = Type.INT
    elif isinstance(default, float):
        kind = Type.FLOAT
    elif isinstance(default, list) and default and all(isinstance(v, int) and not isinstance(v, bool) for v in default):
        kind = Type.INT_LIST
    elif isinstance(default, list) and default and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                        for v in default):
        kind = Type.FLOAT_LIST
    else:
        kind = Type.STR
    return HParam(name, kind, default, "(undeclared: type inferred from the default)", nullable=default is None)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'lr'?)`` for the closest known name, or an empty string."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def split_assignments(items: Iterable[str] | None) -> dict[str, str]:
    """``["lr=1e-3", "legacy=true"]`` -> ``{"lr": "1e-3", "legacy": "true"}`` (values still text:
    they are typed by the declaration of their key)."""
    found: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OsmaError(f"--set expects key=value, got {item!r}")
        if key in found:
            raise OsmaError(f"--set {key} given twice")
        found[key] = value
    return found


def check_mapping(values: Mapping[str, Any], declared: Mapping[str, HParam], where: str) -> dict[str, Any]:
    """Validate every value of ``values`` against ``declared``; unknown keys are an error."""
    out = {}
    for key, value in values.items():
        if key not in declared:
            raise OsmaError(f"{where}: unknown key {key!r}{did_you_mean(key, declared)}")
        out[key] = declared[key].validate(value, where)
    return out
