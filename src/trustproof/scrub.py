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
  plus ``PGPASSWORD=`` and JSON ``"password": "…"`` members (also in Python reprs, single-quoted).

Each rule also holds inside the ``repr`` of raw bytes, where line breaks are the two characters
``\n`` (parsers quote requests that way in their errors).

`scrub()` is idempotent: scrubbing scrubbed text changes nothing.

Logs: `install_scrubbing()` (called by `configure_logging()`, by every gateway and by the sandbox)
scrubs every log record of the process as it is created, whichever library logged it and whichever
handler writes it; tracebacks of errors that quote raw request bytes (aiohttp's HTTP parser
errors) are written without their message at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

REDACTED = "[REDACTED]"

# A truncated key's body runs on through escaped line breaks as well as real ones.
_PEM_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----"
    r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|(?:[A-Za-z0-9+/=:,\-\s]|\\[nrt])*)",
    re.DOTALL,
)
_JWT_CORE = r"(?P<tok>eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)"
_AUTH_SCHEME = r"(?:(?P<scheme>bearer|basic|digest|negotiate|dpop|token)\s+)?"
# Header form runs to the end of the line; quoted form (JSON, Python reprs) to the closing quote.
_AUTH_CORE = (
    r"(?P<name>(?:proxy-)?authorization\b[\"']?\s*[:=]\s*(?P<quote>[\"'])?)"
    + _AUTH_SCHEME
    + r"(?P<cred>(?(quote)[^\"'\r\n]+|[^\r\n]+))"
)
_URL_CORE = r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/?#@\s]*:)(?P<pw>[^@/\s]+)(?=@)"
_KEYWORD_CORE = (
    r"(?P<head>(?:password|passwd|pgpassword|client_secret)\s*=\s*)"
    r"(?P<pw>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,]+)"
)
_JSON_PASSWORD = re.compile(
    r"(?P<head>\"(?:password|passwd|client_secret|private_key)\"\s*:\s*\")(?P<pw>(?:[^\"\\]|\\.)*)\"",
    re.IGNORECASE,
)
# The same members in a Python repr: {'password': '...'} (run only on text with a quote).
_REPR_PASSWORD = re.compile(
    r"(?P<head>'(?:password|passwd|client_secret|private_key)'\s*:\s*')(?P<pw>(?:[^'\\]|\\.)*)'",
    re.IGNORECASE,
)


def _rule(core: str, flags: int = 0) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A rule that starts at a word boundary, and its twin that starts just after an escaped line
    break or tab: in the ``repr`` of raw bytes (what parsers put in their errors)
    ``\\nAuthorization`` has no word boundary before the header name. The twin consumes the
    escape (a literal backslash: found fast) and only runs on text that has a backslash."""
    return re.compile(r"\b" + core, flags), re.compile(r"(?P<esc>\\[nrt])" + core, flags)


_JWT, _JWT_ESCAPED = _rule(_JWT_CORE)
_AUTH_HEADER, _AUTH_ESCAPED = _rule(_AUTH_CORE, re.IGNORECASE)
_URL_PASSWORD, _URL_ESCAPED = _rule(_URL_CORE, re.IGNORECASE)
_KEYWORD_PASSWORD, _KEYWORD_ESCAPED = _rule(_KEYWORD_CORE, re.IGNORECASE)


def scrubbed_traceback(exc: BaseException) -> str:
    """The exception's traceback as text, scrubbed.

    Log this instead of passing ``exc_info``: records propagate to handlers that do not scrub
    (pytest's, a user's root handler), so the secrets must be gone before the record exists.
    """
    return format_exception_scrubbed(exc)


def fingerprint(secret: str | bytes) -> str:
    """A short, non-reversible tag for a secret (first 8 hex digits of its SHA-256)."""
    data = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(data).hexdigest()[:8]


def _matched(match: re.Match[str]) -> str:
    """The match without its leading escape (if the rule is an escaped twin)."""
    escape = match.groupdict().get("esc")
    return match.group(0)[len(escape) :] if escape else match.group(0)


def _keeping_escape(
    replace: Callable[[re.Match[str]], str],
) -> Callable[[re.Match[str]], str]:
    return lambda match: (match.groupdict().get("esc") or "") + replace(match)


def _jwt(match: re.Match[str]) -> str:
    return f"[REDACTED JWT {fingerprint(match.group('tok'))}]"


def _pem(match: re.Match[str]) -> str:
    kind = match.group(1).strip()
    return f"[REDACTED {kind + ' ' if kind else ''}PRIVATE KEY]"


def _auth(match: re.Match[str]) -> str:
    if match.group("cred").startswith("[REDACTED"):
        return _matched(match)
    scheme = match.group("scheme")
    return f"{match.group('name')}{scheme + ' ' if scheme else ''}{REDACTED}"


def _password(match: re.Match[str]) -> str:
    if match.group("pw").startswith(REDACTED):
        return _matched(match)
    tail = match.group(0)[-1] if match.re in (_JSON_PASSWORD, _REPR_PASSWORD) else ""
    return f"{match.group('head')}{REDACTED}{tail}"


# In order: tokens first (a truncated key's body would swallow a token's head). Each rule with
# its escaped twin, if it has one, and the words one of which any match of it contains (in
# lower case: `_needs`).
_Rule = tuple[
    re.Pattern[str],
    re.Pattern[str] | None,
    Callable[[re.Match[str]], str],
    tuple[str, ...],
]
_PASSWORD_WORDS = ("passw", "client_secret", "private_key")  # passwd, (pg)password, ...
_RULES: tuple[_Rule, ...] = (
    (_JWT, _JWT_ESCAPED, _jwt, ("eyj",)),
    (_PEM_KEY, None, _pem, ("-----begin ",)),
    (_AUTH_HEADER, _AUTH_ESCAPED, _auth, ("authorization",)),
    (_URL_PASSWORD, _URL_ESCAPED, _password, ("://",)),
    (_JSON_PASSWORD, None, _password, _PASSWORD_WORDS),
    (_KEYWORD_PASSWORD, _KEYWORD_ESCAPED, _password, _PASSWORD_WORDS),
)


def _needs(words: tuple[str, ...], lowered: str | None) -> bool:
    """Whether a rule must run on the text whose ASCII lower case is `lowered`: any match of it
    contains one of `words` (ASCII case folded). Text that is not ASCII (None) runs every rule:
    case-insensitive matching folds a few other letters too (the Kelvin sign, the long s)."""
    return lowered is None or any(map(lowered.__contains__, words))


def scrub(text: str) -> str:
    """Return `text` with every secret the module docstring lists replaced by a marker.

    Most text holds no secret: a rule runs only on text containing a word every match of it
    contains (`_needs`: ``eyJ`` for a token, ``authorization``, ``://``, ``passw``, ...), which
    is one lower-casing and a few substring searches instead of a dozen regular expressions
    (the audit log scrubs every record)."""
    if not text:
        return text
    lowered = text.lower() if text.isascii() else None
    for rule, escaped, replace, words in _RULES:
        if not _needs(words, lowered):
            continue
        scrubbed = rule.sub(replace, text)
        if escaped is not None and "\\" in scrubbed:
            scrubbed = escaped.sub(_keeping_escape(replace), scrubbed)
        if scrubbed != text:
            text = scrubbed
            lowered = text.lower() if text.isascii() else None
    if "'" in text and _needs(_PASSWORD_WORDS, lowered):
        text = _REPR_PASSWORD.sub(_password, text)
    return text


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


# Exceptions whose message quotes raw input (aiohttp's HTTP parser errors put the request's bytes
# in theirs, `Authorization` header included): their text is withheld from logs altogether, not
# merely scrubbed. Matched by qualified name anywhere in the class's MRO (no import needed).
RAW_INPUT_ERRORS = frozenset({"aiohttp.http_exceptions.HttpProcessingError"})
# Loggers that report such errors once per refused request (aiohttp's servers: token service,
# control socket, egress proxies; gateways audit them instead); bounded by `RawInputLogLimit`.
RAW_INPUT_LOGGERS = ("aiohttp.server",)
RAW_INPUT_LOG_INTERVAL_SECONDS = 10.0
_WITHHELD = "[message withheld: it quotes raw request bytes]"


def quotes_raw_input(exc: BaseException) -> bool:
    """Whether `exc`'s message carries raw input (see `RAW_INPUT_ERRORS`)."""
    return any(f"{c.__module__}.{c.__qualname__}" in RAW_INPUT_ERRORS for c in type(exc).__mro__)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is s for s in seen):
        seen.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return seen


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _withholding_traceback(exc: BaseException) -> str:
    """Like `traceback.format_exception`, but the message of a raw-input error is left out."""
    parts: list[str] = []
    previous: BaseException | None = None
    for link in reversed(_chain(exc)):  # innermost first, as Python prints them
        if previous is not None:
            parts.append(_CAUSE if link.__cause__ is previous else _CONTEXT)
        if link.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(link.__traceback__))
        if quotes_raw_input(link):
            parts.append(f"{type(link).__module__}.{type(link).__qualname__}: {_WITHHELD}\n")
        else:
            parts.extend(traceback.format_exception_only(link))
        previous = link
    return "".join(parts)


def format_exception_scrubbed(exc: BaseException) -> str:
    """The traceback of `exc` for a log: scrubbed, and without raw-input messages."""
    if any(quotes_raw_input(link) for link in _chain(exc)):
        return scrub(_withholding_traceback(exc).rstrip())
    return scrub("".join(traceback.format_exception(exc)).rstrip())


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Scrub a log record in place, once: its message with the arguments already merged in, its
    traceback (formatted now, kept as `exc_text`; `exc_info` is dropped so that no handler
    formats the live exception again) and its stack. Returns the record."""
    if getattr(record, "trustproof_scrubbed", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string or argument: keep what can be shown
        message = f"{record.msg!s} [log arguments could not be formatted]"
    record.msg = scrub(message)
    record.args = ()
    exc_info = record.exc_info
    if exc_info and exc_info[1] is not None:
        record.exc_text = format_exception_scrubbed(exc_info[1])
        record.trustproof_raw_input = any(quotes_raw_input(e) for e in _chain(exc_info[1]))
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    record.exc_info = None
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    record.trustproof_scrubbed = True
    return record


_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def scrub_extras(record: logging.LogRecord) -> None:
    """Scrub the text fields a caller attached with ``extra=`` (they are set after the record is
    created, so the record factory never sees them; a structured formatter may write them)."""
    for name, value in list(record.__dict__.items()):
        if isinstance(value, str) and name not in _RECORD_FIELDS:
            record.__dict__[name] = scrub(value)


class ScrubbingFilter(logging.Filter):
    """A filter for handlers and loggers: scrubs each record (see `scrub_record`) and its
    ``extra`` fields; drops none."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        scrub_extras(record)
        return True


class RawInputLogLimit(logging.Filter):
    """For a library's server logger (`RAW_INPUT_LOGGERS`): records about input its parser refused
    pass at most once per `interval` seconds, the next one saying how many were left out, so that
    a flood of malformed requests cannot fill the log. Other records pass untouched."""

    def __init__(
        self,
        interval: float = RAW_INPUT_LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._last: float | None = None
        self._left_out = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        if not getattr(record, "trustproof_raw_input", False):
            return True
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last < self.interval:
                self._left_out += 1
                return False
            self._last, left_out, self._left_out = now, self._left_out, 0
        if left_out:
            record.msg = f"{record.msg} ({left_out} more like it since the last one not logged)"
        return True


class ScrubbingFormatter(logging.Formatter):
    """A log formatter whose output (message, arguments and traceback alike) is scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(scrub_record(record)))


def _scrubbing_factory(
    make: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(make(*args, **kwargs))

    factory.trustproof_scrubbing = True  # type: ignore[attr-defined]
    return factory


def _print_scrubbed(exc: BaseException | None, what: str) -> None:
    text = format_exception_scrubbed(exc) if exc is not None else "(no exception)"
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{scrub(what)}\n{text}\n")


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _print_scrubbed(exc, "uncaught exception:")


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    name = args.thread.name if args.thread is not None else "?"
    _print_scrubbed(args.exc_value, f"uncaught exception in thread {name}:")


def _unraisablehook(args: sys.UnraisableHookArgs) -> None:
    _print_scrubbed(args.exc_value, f"{args.err_msg or 'exception ignored'}: {args.object!r:.200}")


def install_scrubbing(*, excepthooks: bool = False) -> None:
    """Make every log record of this process pass through the scrubber, whatever logger made it
    (aiohttp's, asyncio's, any library's) and whatever handler gets it (ours, `logging`'s
    last-resort stderr handler, a test runner's): records are scrubbed as they are *created*
    (a log record factory), handlers already on the root logger get a `ScrubbingFilter` too, the
    loggers in `RAW_INPUT_LOGGERS` get a `RawInputLogLimit`, and with `excepthooks` (processes
    trustproof runs itself, not a host's) uncaught exceptions — main thread, threads, "exception
    ignored" — are printed scrubbed. Idempotent; a record factory installed before is kept
    (wrapped)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "trustproof_scrubbing", False):
        logging.setLogRecordFactory(_scrubbing_factory(current))
    handlers = [*logging.getLogger().handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
            handler.addFilter(ScrubbingFilter())
    for name in RAW_INPUT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RawInputLogLimit) for f in logger.filters):
            logger.addFilter(RawInputLogLimit())
    if excepthooks:
        sys.excepthook = _excepthook
        threading.excepthook = _thread_excepthook
        sys.unraisablehook = _unraisablehook


def configure_logging(level: int = logging.WARNING) -> None:
    """Send this process's logs to stderr through the scrubber (see `install_scrubbing`):
    trustproof's at `level`, every other library's at WARNING and above; safe to call again."""
    install_scrubbing(excepthooks=True)
    logging.getLogger("trustproof").setLevel(level)
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "trustproof", False):
            return
    handler = logging.StreamHandler()
    handler.setFormatter(ScrubbingFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubbingFilter())
    handler.trustproof = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
