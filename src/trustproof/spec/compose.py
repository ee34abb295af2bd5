"""YAML text → node tree, with bounds: nesting depth, scalar length, and expanded size.

PyYAML's own composer recurses once per nesting level (a 500-deep list is a `RecursionError`) and
shares aliased nodes, so the walks after it expand them: a 4 KB file of aliases and merge keys can
stand for billions of nodes. This composer reads the parser's events with an explicit stack and
keeps, for every node, its size and height *with aliases expanded*; anything past `Limits` is a
`SpecError` pointing at the place that crossed it, before any later pass sees the tree. An alias
inside the node it names (a recursive document) is refused: the spec has no use for one.

It uses libyaml's parser when PyYAML was built with it (about ten times faster), else PyYAML's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from trustproof.errors import Problem, SpecError
from trustproof.spec.limits import Limits

_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader


_REPARSE_CHARS = 64 * 1024
Mark = Any  # yaml.Mark, or libyaml's own Mark type (same attributes), or None


@dataclass
class _Open:
    """A mapping or list whose end has not been read yet."""

    node: yaml.MappingNode | yaml.SequenceNode
    anchor: str | None
    size: int = 1
    height: int = 1
    key: yaml.Node | None = None
    items: list[yaml.Node] = field(default_factory=list)


def _resolve(loader: Any, kind: type[yaml.Node], value: str | None, implicit: Any) -> str:
    """The tag YAML's resolver gives an untagged node (str, int, bool, null, ...)."""
    tag: str = loader.resolve(kind, value, implicit)
    return tag


def syntax_hint(problem: str) -> str:
    if "\\t" in problem or "tab" in problem:
        return "indent with spaces; YAML does not allow tabs for indentation"
    if "'{'" in problem or "'}'" in problem:
        return (
            "inside [a, b] lists '{' starts a mapping: quote routes with placeholders, "
            "e.g. ['GET /orders/{id}'], or write the list one '- ' item per line"
        )
    return "check the indentation and quoting around this point"


class Composer:
    """One composition of one file's text."""

    def __init__(self, file: str, limits: Limits) -> None:
        self.file = file
        self.limits = limits
        # anchor -> (node, expanded size, height); the size and height are known once it closes.
        self.anchors: dict[str, tuple[yaml.Node, int, int]] = {}
        self.opened: set[str] = set()
        self.stack: list[_Open] = []

    def fail(self, mark: Mark, message: str, hint: str = "") -> SpecError:
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        return SpecError([Problem(self.file, line, col, "", message, hint)])

    def compose(self, text: str) -> yaml.Node | None:
        """The document's root node (None for an empty file); raises `SpecError`."""
        loader = _Loader(text)
        try:
            return self._document(loader)
        except yaml.MarkedYAMLError as exc:
            raise self._syntax_error(text, exc) from None
        except yaml.YAMLError as exc:
            raise SpecError([Problem(self.file, 0, 0, "", f"YAML error: {exc}")]) from None
        finally:
            loader.dispose()

    def _syntax_error(self, text: str, exc: yaml.MarkedYAMLError) -> SpecError:
        """The error as PyYAML words it (its messages quote the offending character, which the
        hints key on), when its pure-Python parser finds it in a short prefix; else libyaml's."""
        mark = exc.problem_mark or exc.context_mark
        index = getattr(mark, "index", None)
        if _Loader is not yaml.SafeLoader and index is not None and index <= _REPARSE_CHARS:
            loader: Any = yaml.SafeLoader(text[: index + 4096])
            try:
                while loader.check_event():
                    loader.get_event()
            except yaml.MarkedYAMLError as again:
                exc = again
                mark = exc.problem_mark or exc.context_mark
            except yaml.YAMLError:
                pass
            finally:
                loader.dispose()
        problem = exc.problem or exc.context or "malformed YAML"
        return self.fail(mark, f"YAML syntax error: {problem}", syntax_hint(problem))

    def _document(self, loader: Any) -> yaml.Node | None:
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # document start
        root: yaml.Node | None = None
        while root is None:
            root = self._event(loader, loader.get_event())
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            event: Any = loader.get_event()
            raise self.fail(
                event.start_mark,
                "a second YAML document ('---') in the spec file",
                "a spec is one document: remove the '---' line and what follows, or merge them",
            )
        return root

    def _event(self, loader: yaml.SafeLoader | yaml.CSafeLoader, event: Any) -> yaml.Node | None:
        """Handle one event; returns the root node once it is complete."""
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event)
        if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            top = self.stack.pop()
            top.node.end_mark = event.end_mark
            if top.anchor is not None:
                self.opened.discard(top.anchor)
                self.anchors[top.anchor] = (top.node, top.size, top.height)
            return self._done(top.node, top.size, top.height)
        anchor = getattr(event, "anchor", None)
        if anchor is not None and (anchor in self.anchors or anchor in self.opened):
            raise self.fail(
                event.start_mark,
                f"the anchor &{anchor} is defined twice",
                "give each anchor its own name",
            )
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(loader, event)
        node: yaml.MappingNode | yaml.SequenceNode
        start: Mark = event.start_mark
        if isinstance(event, yaml.MappingStartEvent):
            tag = (
                event.tag
                if event.tag not in (None, "!")
                else _resolve(loader, yaml.MappingNode, None, event.implicit)
            )
            node = yaml.MappingNode(tag, [], start, None, flow_style=event.flow_style)
        elif isinstance(event, yaml.SequenceStartEvent):
            tag = (
                event.tag
                if event.tag not in (None, "!")
                else _resolve(loader, yaml.SequenceNode, None, event.implicit)
            )
            node = yaml.SequenceNode(tag, [], start, None, flow_style=event.flow_style)
        else:  # pragma: no cover - the parser emits no other event inside a document
            raise self.fail(event.start_mark, f"unexpected YAML event {type(event).__name__}")
        if len(self.stack) + 1 > self.limits.depth:
            raise self.fail(
                event.start_mark,
                f"nested more than {self.limits.depth} levels deep",
                "a spec needs a handful of levels; look for unclosed '[' or '{'",
            )
        if anchor is not None:
            self.opened.add(anchor)
        self.stack.append(_Open(node, anchor))
        return None

    def _scalar(self, loader: yaml.SafeLoader | yaml.CSafeLoader, event: Any) -> yaml.Node | None:
        if len(event.value) > self.limits.scalar_chars:
            raise self.fail(
                event.start_mark,
                f"a value of {len(event.value):,} characters (at most "
                f"{self.limits.scalar_chars:,} allowed)",
                "keep long content in a file the spec refers to",
            )
        tag = event.tag
        if tag is None or tag == "!":
            tag = _resolve(loader, yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(
            tag, event.value, event.start_mark, event.end_mark, style=event.style
        )
        if event.anchor is not None:
            self.anchors[event.anchor] = (node, 1, 0)
        return self._done(node, 1, 0)

    def _alias(self, event: Any) -> yaml.Node | None:
        anchor = event.anchor or ""
        if anchor in self.opened:
            raise self.fail(
                event.start_mark,
                f"the alias *{anchor} is inside the node &{anchor} it refers to",
                "a spec cannot contain itself; copy the values instead",
            )
        found = self.anchors.get(anchor)
        if found is None:
            raise self.fail(
                event.start_mark,
                f"the alias *{anchor} refers to no anchor defined before it",
                f"define &{anchor} earlier in the file, or fix the name",
            )
        node, size, height = found
        if len(self.stack) + height > self.limits.depth:
            raise self.fail(
                event.start_mark,
                f"the alias *{anchor} nests the document more than {self.limits.depth} levels deep",
                "a spec needs a handful of levels; aliases must not pile up",
            )
        return self._done(node, size, height, event.start_mark)

    def _done(self, node: yaml.Node, size: int, height: int, mark: Mark = None) -> yaml.Node | None:
        """A complete node: the root, or the next item of the innermost open collection."""
        if not self.stack:
            return node
        top = self.stack[-1]
        top.size += size
        top.height = max(top.height, height + 1)
        if top.size > self.limits.nodes:
            raise self.fail(
                mark or node.start_mark,
                f"aliases expand the spec to more than {self.limits.nodes:,} values",
                "anchors and aliases (&name, *name, <<: *name) may share settings, not multiply "
                "them: write the values out, or share less",
            )
        if isinstance(top.node, yaml.SequenceNode):
            top.node.value.append(node)
        elif top.key is None:
            top.key = node
        else:
            top.node.value.append((top.key, node))
            top.key = None
        return None


def compose(text: str, file: str, limits: Limits) -> yaml.Node | None:
    """The node tree of spec `text` (None when it holds no document), or `SpecError`."""
    return Composer(file, limits).compose(text)
