"""Turn a YAML node tree into the typed model, collecting every problem with its line and column.

The decoder is driven by the model's type hints, so adding a field to a dataclass in `model.py` is
all it takes to accept, validate and document a new key. It understands: frozen dataclasses
(mappings with known keys), `Mapping[K, V]`, `tuple[X, ...]`, `Literal[...]`, `X | None`, `str`,
`int`, `bool`, and value types with a `parse` class method (see `values.py`).

It never stops at the first problem: a user fixing a spec wants the whole list at once. Every
node's position is recorded by field path, so later checks (`crossref.py`) can point at the value
they complain about.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from trustproof.errors import Problem
from trustproof.spec.values import BadValue

Path = tuple[str | int, ...]
NULL_TAG = "tag:yaml.org,2002:null"


class Invalid:
    """Marker for a value that did not decode (its problem is already recorded)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = Invalid()


def render_path(path: Path) -> str:
    """('services', 'orders', 'calls', 1) -> 'services.orders.calls[1]'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """A hint naming the closest known word, or listing the choices when none is close."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if not options:
        return ""
    listed = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f"expected one of: {listed}"


def describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, int | float):
        return f"the number {value}"
    return repr(value)


class Decoder:
    """One decoding pass over one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.marks: dict[Path, tuple[int, int]] = {}
        self.key_marks: dict[Path, tuple[int, int]] = {}
        self._constructor = SafeConstructor()

    # -- reporting ------------------------------------------------------------------------------

    def problem(
        self, where: yaml.Node | tuple[int, int], path: Path, message: str, hint: str = ""
    ) -> None:
        if isinstance(where, yaml.Node):
            line, col = where.start_mark.line + 1, where.start_mark.column + 1
        else:
            line, col = where
        self.problems.append(Problem(self.file, line, col, render_path(path), message, hint))

    # -- scalars --------------------------------------------------------------------------------

    def python(self, node: yaml.Node) -> object:
        """The plain Python value of a node (lists and dicts for collections)."""
        try:
            return self._constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise BadValue(f"cannot read this value: {exc.problem}") from None

    # -- the type-directed walk -----------------------------------------------------------------

    def decode(self, node: yaml.Node, tp: Any, path: Path) -> Any:
        self.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        origin = get_origin(tp)
        if origin is Annotated:
            return self._scalar(node, tp.__metadata__[0], path)
        if origin in (Union, types.UnionType):
            return self._union(node, tp, path)
        if hasattr(tp, "parse"):
            return self._scalar(node, tp, path)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self._dataclass(node, tp, path)
        if origin in (Mapping, dict, typing.Mapping):
            return self._mapping(node, tp, path)
        if origin is tuple:
            return self._sequence(node, tp, path)
        if origin is Literal:
            return self._literal(node, tp, path)
        return self._scalar(node, tp, path)

    def _union(self, node: yaml.Node, tp: Any, path: Path) -> Any:
        options = [arg for arg in get_args(tp) if arg is not type(None)]
        nullable = len(options) < len(get_args(tp))
        if nullable and isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
            return None
        if len(options) != 1:
            raise TypeError(f"unsupported union {tp!r} in the spec model")
        return self.decode(node, options[0], path)

    def _dataclass(self, node: yaml.Node, cls: type, path: Path) -> Any:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, f"expected a mapping of settings, got {self._kind(node)}")
            return INVALID
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        values: dict[str, Any] = {}
        ok = True
        for key_node, value_node in self._pairs(node, path):
            key = key_node.value
            if key not in fields:
                self.problem(
                    key_node, (*path, key), f"unknown key {key!r}", did_you_mean(key, fields)
                )
                ok = False
                continue
            self.key_marks[(*path, key)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            value = self.decode(value_node, hints[key], (*path, key))
            if value is INVALID:
                ok = False
            values[key] = value
        for name, f in fields.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if name not in values and required:
                self.problem(
                    node, (*path, name), f"missing required key {name!r}", f.metadata.get("doc", "")
                )
                ok = False
        return cls(**values) if ok else INVALID

    def _mapping(self, node: yaml.Node, tp: Any, path: Path) -> Any:
        key_type, value_type = get_args(tp)
        if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
            return types.MappingProxyType({})
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, f"expected a mapping, got {self._kind(node)}")
            return INVALID
        out: dict[Any, Any] = {}
        ok = True
        for key_node, value_node in self._pairs(node, path):
            raw_key = key_node.value
            key = self.decode(key_node, key_type, (*path, raw_key))
            self.key_marks[(*path, raw_key)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            value = self.decode(value_node, value_type, (*path, raw_key))
            if key is INVALID or value is INVALID:
                ok = False
                continue
            out[key] = value
        return types.MappingProxyType(out) if ok else INVALID

    def _sequence(self, node: yaml.Node, tp: Any, path: Path) -> Any:
        args = get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:
            return self._scalar(node, tp, path)
        if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.problem(
                node,
                path,
                f"expected a list, got {self._kind(node)}",
                "write a list as [a, b] or as lines starting with '- '",
            )
            return INVALID
        items = [self.decode(item, args[0], (*path, i)) for i, item in enumerate(node.value)]
        return INVALID if any(item is INVALID for item in items) else tuple(items)

    def _literal(self, node: yaml.Node, tp: Any, path: Path) -> Any:
        choices = get_args(tp)
        value = self._plain(node, path)
        if value is INVALID:
            return INVALID
        if value in choices and type(value) is type(choices[0]):
            return value
        shown = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in choices)
        hint = did_you_mean(value, map(str, choices)) if isinstance(value, str) else ""
        if isinstance(value, bool):
            hint = "YAML reads yes/no/on/off as true/false; quote the word you mean"
        self.problem(
            node, path, f"{describe(value)} is not allowed here (expected one of {shown})", hint
        )
        return INVALID

    def _scalar(self, node: yaml.Node, tp: Any, path: Path) -> Any:
        parse = getattr(tp, "parse", None)
        if parse is None and isinstance(node, yaml.CollectionNode):
            self.problem(node, path, f"expected {self._expected(tp)}, got {self._kind(node)}")
            return INVALID
        try:
            value = self.python(node)
        except BadValue as exc:
            self.problem(node, path, exc.message, exc.hint)
            return INVALID
        if parse is not None:
            try:
                return parse(value)
            except BadValue as exc:
                self.problem(node, path, exc.message, exc.hint)
                return INVALID
        if tp is bool and isinstance(value, bool):
            return value
        if tp is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if tp is str and isinstance(value, str):
            return value
        hint = "quote it to make it a string" if tp is str else ""
        self.problem(node, path, f"expected {self._expected(tp)}, got {describe(value)}", hint)
        return INVALID

    # -- helpers --------------------------------------------------------------------------------

    def _plain(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.CollectionNode):
            self.problem(node, path, f"expected a single value, got {self._kind(node)}")
            return INVALID
        try:
            return self.python(node)
        except BadValue as exc:
            self.problem(node, path, exc.message, exc.hint)
            return INVALID

    def _pairs(
        self, node: yaml.MappingNode, path: Path
    ) -> typing.Iterator[tuple[yaml.ScalarNode, yaml.Node]]:
        """Key/value pairs with merge keys (`<<: *anchor`) applied and duplicates reported.

        Keys written in this mapping override merged ones, as YAML's merge-key type specifies;
        the same key written twice here is an error (YAML would silently keep the last).
        """
        explicit = {id(key) for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"}
        try:
            self._constructor.flatten_mapping(node)
        except ConstructorError as exc:
            self.problem(node, path, f"bad merge key: {exc.problem}")
            return
        chosen: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                shown = (
                    self._kind(key_node)
                    if isinstance(key_node, yaml.CollectionNode)
                    else (describe(self.python(key_node)))
                )
                self.problem(key_node, path, f"keys must be strings, got {shown}", "quote the key")
                continue
            first = chosen.get(key_node.value)
            if first is not None:
                if id(key_node) not in explicit:
                    continue  # a merged key never overrides
                if id(first[0]) in explicit:
                    self.problem(
                        key_node,
                        (*path, key_node.value),
                        f"duplicate key {key_node.value!r} (first given at line "
                        f"{first[0].start_mark.line + 1})",
                        "YAML keeps only the last one; remove or merge the duplicates",
                    )
                    continue
            chosen[key_node.value] = (key_node, value_node)
        yield from chosen.values()

    @staticmethod
    def _kind(node: yaml.Node) -> str:
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        return "a single value"

    @staticmethod
    def _expected(tp: Any) -> str:
        return {str: "a string", int: "a whole number", bool: "true or false"}.get(
            tp, getattr(tp, "__name__", str(tp))
        )
