"""Bounded, strict YAML for the files a user hands the builders (manifests, protocol files).

``yaml.safe_load`` already refuses Python tags; this adds what it lets through: a document larger
than :data:`MAX_BYTES`, more than :data:`MAX_ALIASES` alias uses (a "billion laughs" document
expands exponentially through aliases of aliases; refused when it would expand to more than
:data:`MAX_NODES` values), duplicate mapping keys (YAML says they are an
error; PyYAML keeps the last silently), and text that is not UTF-8. A byte-order mark is accepted.
Every refusal is one :class:`OsmaError` naming the file (and the line, where YAML knows it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from osma_bench.errors import OsmaError

MAX_BYTES = 1 << 20
MAX_ALIASES = 1000
#: Most values a document may hold once its aliases are expanded.
MAX_NODES = 200_000


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts alias uses and refuses duplicate keys."""

    def __init__(self, stream: str, path: Path) -> None:
        super().__init__(stream)
        self.path = path
        self.aliases = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise OsmaError(f"{self.path}: line {mark.line + 1}: more than {MAX_ALIASES} YAML aliases (*name); "
                                "refusing a document that may expand without bound")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # noqa: ANN001 - PyYAML's signature
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise OsmaError(f"{self.path}: line {key_node.start_mark.line + 1}: a mapping key must be a "
                                    "plain value") from None
                if key in seen:
                    raise OsmaError(f"{self.path}: line {key_node.start_mark.line + 1}: key {key!r} appears twice "
                                    f"in one mapping (first on line {seen[key]})")
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values in ``node`` once every alias is expanded (memoised: fast even for a bomb)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once (and cannot loop here)
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        total = 1
    memo[key] = min(total, 1 << 62)
    return memo[key]


def load_yaml(path: str | os.PathLike, what: str = "YAML file") -> Any:
    """The parsed content of ``path`` (bounded and strict, see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise OsmaError(f"{path}: {what} not found")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise OsmaError(f"{path}: {size} bytes; a {what} may have at most {MAX_BYTES} bytes")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OsmaError(f"{path}: not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); save the "
                        f"{what} as UTF-8") from None
    loader = _BoundedLoader(text, path)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node, {})
        if expanded > MAX_NODES:
            raise OsmaError(f"{path}: expands to more than {MAX_NODES} YAML values through aliases (*name); "
                            "refusing it (a 'billion laughs' document)")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise OsmaError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    finally:
        loader.dispose()
