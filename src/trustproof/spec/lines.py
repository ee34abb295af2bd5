"""Where a field of the spec is written: the line of every key and of every list item, so that a
finding can point at the line a user should change (a GitHub ``::error file=…,line=…``
annotation, a GitLab Code Quality entry).

    lines = SpecLines.of_text(text, "trustproof.yaml")
    lines.line(("access", "services", "orders", "storefront"))        # the caller's key
    lines.item_line(("access", "services", "orders", "storefront"), "GET /orders")

The text goes through the same bounded composer as the spec loader (`spec.compose`); a file that
cannot be read or parsed gives no lines, never an error: locating is a courtesy of the reports,
and the spec was validated before any run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import yaml

from trustproof.errors import TrustproofError
from trustproof.spec.compose import compose
from trustproof.spec.files import read_bounded
from trustproof.spec.limits import LIMITS

Key = tuple[str, ...]


@dataclass(frozen=True)
class SpecLines:
    """1-based line numbers: of each mapping key by its path, of each scalar list item by its
    list's path and its value."""

    keys: Mapping[Key, int] = field(default_factory=lambda: MappingProxyType({}))
    items: Mapping[Key, Mapping[str, int]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of_text(cls, text: str, file: str) -> SpecLines:
        try:
            root = compose(text, file, LIMITS)
        except TrustproofError:
            return cls()
        return cls._walk(root) if root is not None else cls()

    @classmethod
    def of_file(cls, path: Path) -> SpecLines:
        try:
            text = read_bounded(path, LIMITS.spec_bytes).decode("utf-8")
        except (OSError, UnicodeDecodeError, TrustproofError):
            return cls()
        return cls.of_text(text, str(path))

    @classmethod
    def _walk(cls, root: yaml.Node) -> SpecLines:
        keys: dict[Key, int] = {}
        items: dict[Key, dict[str, int]] = {}
        stack: list[tuple[Key, yaml.Node]] = [((), root)]
        while stack:
            path, node = stack.pop()
            if isinstance(node, yaml.MappingNode):
                for key_node, value in node.value:
                    if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                        continue
                    child = (*path, str(key_node.value))
                    keys.setdefault(child, key_node.start_mark.line + 1)
                    stack.append((child, value))
            elif isinstance(node, yaml.SequenceNode):
                for index, item in enumerate(node.value):
                    if isinstance(item, yaml.ScalarNode):
                        items.setdefault(path, {}).setdefault(
                            str(item.value), item.start_mark.line + 1
                        )
                    else:
                        stack.append(((*path, str(index)), item))
        frozen = {path: MappingProxyType(values) for path, values in items.items()}
        return cls(MappingProxyType(keys), MappingProxyType(frozen))

    def line(self, *candidates: Key) -> int | None:
        """The line of the first candidate path that the spec writes, or None."""
        return next((self.keys[c] for c in candidates if c in self.keys), None)

    def item_line(self, path: Key, value: str) -> int | None:
        """The line of the list item `value` in the list at `path`, or None."""
        return self.items.get(path, {}).get(value)
