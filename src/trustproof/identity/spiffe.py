"""SPIFFE IDs: ``spiffe://<trust-domain>/<path>``, parsed and checked by the SPIFFE-ID standard.

The rules (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md), all enforced:

* the scheme is ``spiffe``, lowercase, followed by ``://``;
* the trust domain is 1-255 characters from ``[a-z0-9._-]`` — so no uppercase, no port, no
  userinfo (``:`` and ``@`` are refused);
* the path is empty (the trust domain's own ID) or ``/``-separated segments of ``[A-Za-z0-9._-]``,
  none of them empty, ``.`` or ``..``, and no trailing ``/``; percent-encoding is not allowed;
* no query (``?``) and no fragment (``#``);
* at most 2048 bytes in all.

Comparison is exact: two IDs are the same workload only if their text is identical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trustproof.identity.errors import InvalidSpiffeId

SCHEME = "spiffe://"
MAX_ID_BYTES = 2048
MAX_TRUST_DOMAIN = 255

_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_EXAMPLE = "expected spiffe://<trust-domain>/<path>, e.g. spiffe://shop.test/orders"


def _bad(text: str, what: str, hint: str = _EXAMPLE) -> InvalidSpiffeId:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return InvalidSpiffeId(f"bad SPIFFE ID {shown!r}: {what}\n    hint: {hint}")


def _trust_domain_problem(trust_domain: str) -> str | None:
    if not trust_domain:
        return "the trust domain is empty"
    if len(trust_domain) > MAX_TRUST_DOMAIN:
        return f"the trust domain is longer than {MAX_TRUST_DOMAIN} characters"
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        bad = "".join(sorted({c for c in trust_domain if not _TRUST_DOMAIN.fullmatch(c)}))
        return f"the trust domain {trust_domain!r} has characters {bad!r} that are not allowed"
    return None


_TRUST_DOMAIN_HINT = (
    "a trust domain uses only lowercase letters, digits, '.', '-' and '_' (no port, no userinfo), "
    "e.g. 'shop.test'"
)


def check_trust_domain(trust_domain: str) -> str:
    """Return `trust_domain` if it is a valid trust domain name, else raise InvalidSpiffeId."""
    problem = _trust_domain_problem(trust_domain)
    if problem:
        raise InvalidSpiffeId(f"bad trust domain: {problem}\n    hint: {_TRUST_DOMAIN_HINT}")
    return trust_domain


def _check_path(text: str, path: str) -> None:
    if not path:
        return
    if not path.startswith("/"):
        raise _bad(text, f"the path {path!r} must start with '/'")
    if path.endswith("/"):
        raise _bad(text, "the path ends with '/'", "remove the trailing slash")
    for segment in path[1:].split("/"):
        if not segment:
            raise _bad(text, "the path has an empty segment ('//')", "remove the doubled slash")
        if segment in {".", ".."}:
            raise _bad(text, f"the path has a {segment!r} segment", "write the path canonically")
        if not _SEGMENT.fullmatch(segment):
            bad = "".join(sorted({c for c in segment if not _SEGMENT.fullmatch(c)}))
            raise _bad(
                text,
                f"the path segment {segment!r} has characters {bad!r} that are not allowed",
                "path segments use only letters, digits, '.', '-' and '_' (no percent-encoding)",
            )


@dataclass(frozen=True)
class SpiffeId:
    """A SPIFFE ID. `path` is empty (the trust domain itself) or starts with ``/``.

    Construct with `parse` or `for_name`; direct construction is validated the same way.
    """

    trust_domain: str
    path: str

    def __post_init__(self) -> None:
        text = f"{SCHEME}{self.trust_domain}{self.path}"
        problem = _trust_domain_problem(self.trust_domain)
        if problem:
            raise _bad(text, problem, _TRUST_DOMAIN_HINT)
        _check_path(text, self.path)
        if len(text.encode()) > MAX_ID_BYTES:
            raise _bad(text, f"it is longer than {MAX_ID_BYTES} bytes")

    @classmethod
    def parse(cls, text: str) -> SpiffeId:
        """Parse ``spiffe://td/path``; raise `InvalidSpiffeId` (a ValueError) saying what is wrong.

        The trust domain's own ID (``spiffe://td``, empty path) is a valid SPIFFE ID too.
        """
        if not isinstance(text, str):
            raise _bad(repr(text), f"expected a string, got {type(text).__name__}")
        if len(text.encode()) > MAX_ID_BYTES:
            raise _bad(text, f"it is longer than {MAX_ID_BYTES} bytes")
        if not text.startswith(SCHEME):
            if text[: len(SCHEME)].lower() == SCHEME:
                raise _bad(text, "the scheme must be lowercase 'spiffe'")
            raise _bad(text, "the scheme is missing or is not 'spiffe://'")
        rest = text[len(SCHEME) :]
        for mark, part in (("?", "a query"), ("#", "a fragment")):
            if mark in rest:
                raise _bad(text, f"it has {part} ({mark!r}), which SPIFFE IDs never have")
        trust_domain, slash, path = rest.partition("/")
        if not trust_domain:
            raise _bad(text, "the trust domain is missing")
        if "@" in trust_domain:
            raise _bad(text, "it has userinfo ('@'), which SPIFFE IDs never have")
        if ":" in trust_domain:
            raise _bad(text, "it has a port (':'), which SPIFFE IDs never have")
        if trust_domain.lower() != trust_domain:
            raise _bad(text, f"the trust domain {trust_domain!r} has uppercase letters")
        return cls(trust_domain, slash + path)

    @classmethod
    def for_name(cls, trust_domain: str, name: str) -> SpiffeId:
        """``spiffe://<trust_domain>/<name>`` for a workload or persona name (one path segment)."""
        if "/" in name:
            raise _bad(
                f"{SCHEME}{trust_domain}/{name}",
                f"the name {name!r} has a '/'",
                "a name is a single path segment: letters, digits, '.', '-' and '_'",
            )
        return cls(trust_domain, f"/{name}")

    @property
    def name(self) -> str:
        """The last path segment (the workload name); empty for a trust domain's own ID."""
        return self.path.rpartition("/")[2]

    @property
    def is_workload(self) -> bool:
        """True if the ID has a path: X.509-SVIDs for workloads never carry a bare trust domain."""
        return bool(self.path)

    def __str__(self) -> str:
        return f"{SCHEME}{self.trust_domain}{self.path}"
