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
import functools
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from yaml.constructor import SafeConstructor

from trustproof.errors import Problem, TrustproofError
from trustproof.spec.limits import LIMITS
from trustproof.spec.values import BadValue, shown
from trustproof.spec.wording import Path, describe, did_you_mean, render_path

YAML_TAG = "tag:yaml.org,2002:"
NULL_TAG = YAML_TAG + "null"
STR_TAG = YAML_TAG + "str"
INT_TAG = YAML_TAG + "int"
SEQ_TAG = YAML_TAG + "seq"
MAP_TAG = YAML_TAG + "map"
MERGE_TAG = YAML_TAG + "merge"


class BadMerge(TrustproofError):
    """A merge key (``<<``) whose value is not a mapping or a list of mappings."""

    def __init__(self, node: yaml.Node) -> None:
        super().__init__("bad merge")  # internal: becomes a Problem of the SpecError
        self.node = node


class Invalid:
    """Marker for a value that did not decode (its problem is already recorded)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = Invalid()


@functools.cache
def _model_fields(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field[Any]]]:
    """A model dataclass's type hints and its (non-internal) fields, worked out once per class."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    return hints, fields


class Decoder:
    """One decoding pass over one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.marks: dict[Path, tuple[int, int]] = {}
        self.key_marks: dict[Path, tuple[int, int]] = {}
        self._constructor = SafeConstructor()
        self._merged: dict[int, dict[str, tuple[yaml.ScalarNode, yaml.Node]]] = {}

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

    def python(self, node: yaml.Node, depth: int = 0) -> object:
        """The plain Python value of a node (lists and dicts for collections).

        Raises `BadValue` for anything that does not read, whatever the parser's tag resolution or
        an explicit tag (``!!int "x"``) asked for: conversion errors never escape as crashes.
        """
        if isinstance(node, yaml.ScalarNode):
            return self._scalar_value(node)
        if depth > LIMITS.depth:  # aliases are depth-checked while composing; this is a backstop
            raise BadValue(f"nested more than {LIMITS.depth} levels deep")
        if isinstance(node, yaml.SequenceNode) and node.tag == SEQ_TAG:
            return [self.python(item, depth + 1) for item in node.value]
        if isinstance(node, yaml.MappingNode) and node.tag == MAP_TAG:
            try:
                pairs = self._effective(node)
            except BadMerge:
                raise BadValue("bad merge key: expected a mapping or a list of mappings") from None
            return {key: self.python(value, depth + 1) for key, (_, value) in pairs.items()}
        raise BadValue(
            f"cannot read this value: the tag {shown(node.tag)} is not supported here",
            "remove the explicit tag",
        )

    def _scalar_value(self, node: yaml.ScalarNode) -> object:
        if node.tag == STR_TAG:
            return node.value
        tag = node.tag.rpartition(":")[2] if node.tag.startswith(YAML_TAG) else node.tag
        if node.tag == INT_TAG:
            digits = sum(ch.isdigit() for ch in node.value)
            if digits > LIMITS.int_digits:
                raise BadValue(
                    f"a number with {digits:,} digits (at most {LIMITS.int_digits} allowed)",
                    "ports, counts and sizes have a few digits; quote it if it is text",
                )
        try:
            return self._constructor.construct_object(node)
        except (
            yaml.YAMLError,
            ValueError,
            TypeError,
            LookupError,
            AttributeError,
            ArithmeticError,
        ):
            raise BadValue(
                f"cannot read {shown(node.value)} as {tag}",
                f"write a valid {tag}, or quote the text (without a !!{tag} tag) to make it "
                "a string",
            ) from None

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
        hints, fields = _model_fields(cls)
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

        Keys written in this mapping override merged ones and an earlier merged mapping overrides
        a later one, as YAML's merge-key type specifies; the same key written twice here is an
        error (YAML would silently keep the last). The node tree is never modified (aliased nodes
        are shared), and each merged mapping is resolved once.
        """
        explicit = [(key, value) for key, value in node.value if key.tag != MERGE_TAG]
        merged: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
        try:
            _, sources = self._split(node)
            for source in sources:
                for key, pair in self._effective(source).items():
                    merged.setdefault(key, pair)
        except BadMerge as exc:  # reported; the keys written here are still checked
            self.problem(
                exc.node,
                path,
                "bad merge key: expected a mapping or a list of mappings, got "
                f"{self._kind(exc.node)}",
                "write <<: *anchor or <<: [*one, *two], where the anchors name mappings",
            )
            merged = {}
        chosen = dict(merged)
        written: dict[str, yaml.ScalarNode] = {}
        for key_node, value_node in explicit:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != STR_TAG:
                self.problem(
                    key_node,
                    path,
                    f"keys must be strings, got {self._key_kind(key_node)}",
                    "quote the key",
                )
                continue
            first = written.get(key_node.value)
            if first is not None:
                self.problem(
                    key_node,
                    (*path, key_node.value),
                    f"duplicate key {shown(key_node.value)} (first given at line "
                    f"{first.start_mark.line + 1})",
                    "YAML keeps only the last one; remove or merge the duplicates",
                )
                continue
            written[key_node.value] = key_node
            chosen[key_node.value] = (key_node, value_node)
        yield from chosen.values()

    @staticmethod
    def _split(
        node: yaml.MappingNode,
    ) -> tuple[list[tuple[yaml.Node, yaml.Node]], list[yaml.MappingNode]]:
        """The pairs written in `node`, and the mappings its merge keys name (in order)."""
        explicit: list[tuple[yaml.Node, yaml.Node]] = []
        sources: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                explicit.append((key_node, value_node))
            elif isinstance(value_node, yaml.MappingNode):
                sources.append(value_node)
            elif isinstance(value_node, yaml.SequenceNode):
                for item in value_node.value:
                    if not isinstance(item, yaml.MappingNode):
                        raise BadMerge(item)
                    sources.append(item)
            else:
                raise BadMerge(value_node)
        return explicit, sources

    def _effective(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.ScalarNode, yaml.Node]]:
        """A merged mapping's string keys with its own merges applied (computed once per node).

        Problems inside it are reported where it is decoded as itself, not at each merge; the
        recursion follows merge chains, whose length the composer's depth limit bounds.
        """
        cached = self._merged.get(id(node))
        if cached is not None:
            return cached
        explicit, sources = self._split(node)
        out: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
        for source in sources:
            for key, pair in self._effective(source).items():
                out.setdefault(key, pair)
        for key_node, value_node in explicit:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == STR_TAG:
                out[key_node.value] = (key_node, value_node)
        self._merged[id(node)] = out
        return out

    def _key_kind(self, key_node: yaml.Node) -> str:
        if isinstance(key_node, yaml.CollectionNode):
            return self._kind(key_node)
        try:
            return describe(self.python(key_node))
        except BadValue:
            return shown(key_node.value)

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
