"""The oracle of the path canonicaliser's fuzz targets (Hypothesis and atheris).

`check_target(raw)` holds for every string, or `trustproof.gateway.paths.canonicalize` has a bug:

- it returns a `CanonicalTarget` or a `BadTarget` (`bad-target` or `bad-path`), never raises;
- it agrees with `reference`, an independent reading of the module's rules (decoding with
  `urllib.parse.unquote_to_bytes`, dot segments by RFC 3986 §5.2.4's stack);
- what it accepts starts with `/`, has no empty, `.` or `..` segment (no `//`, `/./`, `/../`,
  nor a trailing `/`), came from a raw path without an encoded `/`, `\\`, NUL or `%`, and is
  idempotent: a canonical path that needs no encoding is its own canonical form, and the target
  the gateway forwards (`origin_form`) canonicalises to the same path and re-encodes to the same
  target.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from trustproof.gateway.http1 import origin_form
from trustproof.gateway.paths import BadTarget, CanonicalTarget, canonicalize

REASONS = frozenset({"bad-target", "bad-path"})
_FORBIDDEN_ESCAPE = re.compile(r"%(2f|5c|00|25)", re.IGNORECASE)
_RAW_OK = re.compile(r"[\x21-\x7e]*")  # printable ASCII: what a request-target may carry
_DECODED_BAD = re.compile(r"[\x00-\x20\x7f\\#]")
_ESCAPES_WELL_FORMED = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")


def reference(raw: str) -> str | None:
    """The canonical path of `raw` by the documented rules, or None if they refuse it."""
    if not raw.startswith("/"):
        return None
    path = raw.partition("?")[0]
    if not _RAW_OK.fullmatch(path) or "\\" in path or "#" in path:
        return None
    if not _ESCAPES_WELL_FORMED.fullmatch(path) or _FORBIDDEN_ESCAPE.search(path):
        return None
    try:
        text = unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _DECODED_BAD.search(text):
        return None
    stack: list[str] = []
    for segment in text.split("/"):
        if segment == "..":
            if not stack:
                return None
            stack.pop()
        elif segment not in ("", "."):
            stack.append(segment)
    return "/" + "/".join(stack)


def check_target(raw: str) -> CanonicalTarget | BadTarget:
    result = canonicalize(raw)
    expected = reference(raw)
    if isinstance(result, BadTarget):
        assert result.reason in REASONS, f"undocumented reason {result.reason!r}"
        assert result.detail, "a refusal without a detail"
        assert expected is None, f"{raw!r} refused ({result.detail}), the rules give {expected!r}"
        return result
    assert isinstance(result, CanonicalTarget), f"{type(result).__name__} returned"
    path, query = result.path, result.query
    assert path == expected, f"{raw!r} gives {path!r}, the rules give {expected!r}"
    assert query == raw.partition("?")[2], "the query was not passed through unchanged"
    assert path.startswith("/"), path
    assert path == "/" or all(s not in ("", ".", "..") for s in path[1:].split("/")), path
    raw_path = raw.partition("?")[0]
    assert not _FORBIDDEN_ESCAPE.search(raw_path), f"{raw!r} accepted with a forbidden escape"
    assert not set(raw_path) & {"\\", "\0"}, f"{raw!r} accepted with a raw backslash or NUL"
    if _RAW_OK.fullmatch(path) and not set(path) & set("%?#\\"):  # needs no encoding
        same = canonicalize(path)
        assert same == CanonicalTarget(path, ""), f"{path!r} is not its own canonical form: {same}"
    try:  # aiohttp hands over the target decoded as UTF-8 with surrogateescape; nothing else
        query.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return result
    target = origin_form(path, query)
    again = canonicalize(target)
    assert isinstance(again, CanonicalTarget), f"forwarded target {target!r} is refused: {again}"
    assert again.path == path, f"forwarded target {target!r} canonicalises to {again.path!r}"
    assert origin_form(again.path, again.query) == target, "forwarding is not a fixed point"
    return result
