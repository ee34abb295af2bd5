"""Request-target canonicalisation and route matching, without I/O.

The gateway decides on the canonical path and forwards exactly that path, so that the decision and
the service can never see two different resources (the classic parser-differential bypass).

Rules, in order (RFC 3986 §6.2.2 normalisation, made strict where ambiguity could be abused):

1. Only origin-form targets (``/path?query``); absolute-form, authority-form and ``*`` are refused.
2. The path may not contain raw spaces, control characters, backslashes or non-ASCII characters
   (a request-target is ASCII, RFC 9112 §3.2: non-ASCII travels percent-encoded as UTF-8; a raw
   character read as a byte would be decoded a second time).
3. Percent-decoding happens exactly once. Encoded ``/`` (``%2F``), ``\\`` (``%5C``), NUL
   (``%00``) and ``%25`` (an encoded ``%``, the tool of double-encoding) are refused outright: no
   service should need them, and each is a known way to make two parsers disagree.
4. Empty segments (``//``) are collapsed; ``.`` segments dropped; ``..`` removes the previous
   segment; ``..`` above the root is refused.
5. A trailing slash is dropped (``/orders/`` is ``/orders``).
6. Case is kept: paths are case-sensitive. ``/ORDERS`` matches no route and is refused, so a
   case-insensitive service behind the gateway cannot be reached by a case trick.

The query string is passed through unchanged; it takes no part in the decision.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from trustproof.spec.values import Route

_FORBIDDEN_ESCAPES = {
    "2f": "an encoded '/'",
    "5c": "an encoded '\\'",
    "00": "an encoded NUL",
    "25": "an encoded '%' (double encoding)",
}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_RAW = re.compile(r"[\x00-\x20\x7f\\#]")
_NOT_ASCII = re.compile(r"[^\x00-\x7f]")


@dataclass(frozen=True)
class CanonicalTarget:
    path: str
    query: str  # without the '?', possibly empty

    @property
    def target(self) -> str:
        """What the upstream receives."""
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(frozen=True)
class BadTarget:
    reason: str  # stable code
    detail: str


def canonicalize(raw: str) -> CanonicalTarget | BadTarget:
    """The canonical form of a request target, or why it is refused."""
    if not raw.startswith("/"):
        return BadTarget("bad-target", "only origin-form targets ('/path') are accepted")
    path, _, query = raw.partition("?")
    refused = _raw_refusal(path)
    if refused is not None:
        return refused
    try:
        decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), path).encode("latin-1")
        text = decoded.decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return BadTarget("bad-path", "the path is not valid UTF-8 after percent-decoding")
    if _BAD_RAW.search(text):
        return BadTarget("bad-path", "the path decodes to a forbidden character")
    segments: list[str] = []
    for segment in text.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                return BadTarget("bad-path", "the path climbs above the root with '..'")
            segments.pop()
            continue
        segments.append(segment)
    return CanonicalTarget("/" + "/".join(segments), query)


def _raw_refusal(path: str) -> BadTarget | None:
    """Why the path as sent (before any decoding) is refused, if it is."""
    bad = _BAD_RAW.search(path)
    if bad:
        return BadTarget("bad-path", f"the path contains a forbidden character {bad.group()!r}")
    if _NOT_ASCII.search(path):
        return BadTarget(
            "bad-path", "the path contains a raw non-ASCII character (percent-encode it as UTF-8)"
        )
    for match in _ESCAPE.finditer(path):
        what = _FORBIDDEN_ESCAPES.get(match.group(1).lower())
        if what:
            return BadTarget("bad-path", f"the path contains {what}")
    if re.search(r"%(?![0-9A-Fa-f]{2})", path):
        return BadTarget("bad-path", "the path contains a malformed percent-escape")
    return None


class RouteTable:
    """Route templates of one service; the most specific template wins (literals beat {params})."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = [
            (route, route.path.strip("/").split("/") if route.path != "/" else [])
            for route in routes
        ]

    def match(self, method: str, path: str) -> Route | None:
        """The route for `method` and canonical `path`, or None."""
        wanted = path.strip("/").split("/") if path != "/" else []
        best: tuple[int, Route] | None = None
        for route, parts in self._routes:
            if route.method != method or len(parts) != len(wanted):
                continue
            score = 0
            for template, actual in zip(parts, wanted, strict=True):
                if template.startswith("{") and template.endswith("}"):
                    continue
                if template != actual:
                    break
                score += 1
            else:
                if best is None or score > best[0]:
                    best = (score, route)
        return best[1] if best else None

    def methods_for(self, path: str) -> tuple[str, ...]:
        """Methods some route offers on `path` (to tell 'method not allowed' from 'no route')."""
        return tuple(
            sorted(
                {
                    route.method
                    for route, _ in self._routes
                    if self.match(route.method, path) is not None
                }
            )
        )
