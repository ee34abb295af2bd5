"""Redact secrets from any text before it reaches a log, a report, an error message or a `repr`.

What is redacted, and why each rule looks the way it does:

* PEM private keys (PKCS#1, PKCS#8, SEC1, encrypted) — the whole block, including a block cut off
  before its END line (truncated log lines).
* JWTs in compact JWS form (``eyJ...``, three dot-separated parts), including unsigned
  ``alg: none`` tokens with an empty third segment. A short SHA-256 fingerprint is kept so that
  two log lines about the same token can still be matched up without revealing it.
* HTTP ``Authorization`` / ``Proxy-Authorization`` credentials, as headers or JSON members; the
  scheme (``Bearer``, ``Basic``) is kept because it helps debugging and is not secret.
* Passwords in DSNs: ``postgresql://user:secret@host`` and libpq keyword form ``password=secret``,
  plus ``PGPASSWORD=`` and JSON ``"password": "…"`` members.

`scrub()` is idempotent: scrubbing scrubbed text changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import traceback
from dataclasses import dataclass, field
from typing import Generic, TypeVar

REDACTED = "[REDACTED]"

_PEM_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----"
    r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[A-Za-z0-9+/=:,\-\s]*)",
    re.DOTALL,
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_AUTH_SCHEME = r"(?:(?P<scheme>bearer|basic|digest|negotiate|dpop|token)\s+)?"
# Header form runs to the end of the line; quoted form (JSON, Python reprs) to the closing quote.
_AUTH_HEADER = re.compile(
    r"(?P<name>\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*(?P<quote>[\"'])?)"
    + _AUTH_SCHEME
    + r"(?P<cred>(?(quote)[^\"'\r\n]+|[^\r\n]+))",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^:/?#@\s]*:)(?P<pw>[^@/\s]+)(?=@)", re.IGNORECASE
)
_KEYWORD_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pgpassword|client_secret)\s*=\s*)"
    r"(?P<pw>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,]+)",
    re.IGNORECASE,
)
_JSON_PASSWORD = re.compile(
    r"(?P<head>\"(?:password|passwd|client_secret|private_key)\"\s*:\s*\")(?P<pw>(?:[^\"\\]|\\.)*)\"",
    re.IGNORECASE,
)


def scrubbed_traceback(exc: BaseException) -> str:
    """The exception's traceback as text, scrubbed.

    Log this instead of passing ``exc_info``: records propagate to handlers that do not scrub
    (pytest's, a user's root handler), so the secrets must be gone before the record exists.
    """
    return scrub("".join(traceback.format_exception(exc)).rstrip())


def fingerprint(secret: str | bytes) -> str:
    """A short, non-reversible tag for a secret (first 8 hex digits of its SHA-256)."""
    data = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(data).hexdigest()[:8]


def _jwt(match: re.Match[str]) -> str:
    return f"[REDACTED JWT {fingerprint(match.group(0))}]"


def _pem(match: re.Match[str]) -> str:
    kind = match.group(1).strip()
    return f"[REDACTED {kind + ' ' if kind else ''}PRIVATE KEY]"


def _auth(match: re.Match[str]) -> str:
    if match.group("cred").startswith("[REDACTED"):
        return match.group(0)
    scheme = match.group("scheme")
    return f"{match.group('name')}{scheme + ' ' if scheme else ''}{REDACTED}"


def _password(match: re.Match[str]) -> str:
    if match.group("pw").startswith(REDACTED):
        return match.group(0)
    tail = '"' if match.group(0).endswith('"') and match.re is _JSON_PASSWORD else ""
    return f"{match.group('head')}{REDACTED}{tail}"


def scrub(text: str) -> str:
    """Return `text` with every secret the module docstring lists replaced by a marker."""
    if not text:
        return text
    text = _PEM_KEY.sub(_pem, text)
    text = _JWT.sub(_jwt, text)
    text = _AUTH_HEADER.sub(_auth, text)
    text = _URL_PASSWORD.sub(_password, text)
    text = _JSON_PASSWORD.sub(_password, text)
    return _KEYWORD_PASSWORD.sub(_password, text)


T = TypeVar("T")


@dataclass(frozen=True)
class Secret(Generic[T]):
    """A value that must not be shown: its `repr` and `str` give a fingerprint, never the value.

    Use `reveal()` at the one place that really needs the value (a socket write, a file 0600).
    """

    _value: T = field(repr=False)

    def reveal(self) -> T:
        return self._value

    def __repr__(self) -> str:
        value = self._value
        tag = fingerprint(value) if isinstance(value, str | bytes) else "…"
        return f"Secret({tag})"

    __str__ = __repr__


class ScrubbingFormatter(logging.Formatter):
    """A log formatter whose output (message, arguments and traceback alike) is scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure_logging(level: int = logging.WARNING) -> None:
    """Send trustproof's logs to stderr through the scrubber; safe to call more than once."""
    logger = logging.getLogger("trustproof")
    logger.setLevel(level)
    for handler in logger.handlers:
        if getattr(handler, "_trustproof", False):
            handler.setLevel(level)
            return
    handler = logging.StreamHandler()
    handler.setFormatter(ScrubbingFormatter("%(levelname)s %(name)s: %(message)s"))
    handler._trustproof = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
