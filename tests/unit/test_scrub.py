"""The scrubber redacts each kind of secret and leaves ordinary text alone."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from aiohttp.http_exceptions import BadStatusLine

from trustproof.scrub import (
    RawInputLogLimit,
    ScrubbingFilter,
    ScrubbingFormatter,
    Secret,
    fingerprint,
    format_exception_scrubbed,
    install_scrubbing,
    scrub,
    scrub_record,
    scrubbed_traceback,
)

JWT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0."
    "eyJzdWIiOiJzcGlmZmU6Ly9zaG9wLnRlc3Qvb3JkZXJzIn0."
    "MEUCIQDx3vS_signature-part"
)
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        (f"key:\n{PEM}\ndone", "MIGHAgEAMBMG", "key:\n[REDACTED PRIVATE KEY]\ndone"),
        (
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBk\n-----END EC PRIVATE KEY-----",
            "MHcCAQEEIBk",
            "[REDACTED EC PRIVATE KEY]",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA truncated",
            "MIIEpAIBAAK",
            "[REDACTED RSA PRIVATE KEY]",
        ),
        (f"token={JWT} end", "MEUCIQDx3vS", f"token=[REDACTED JWT {fingerprint(JWT)}] end"),
        (
            "alg none: eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
            "eyJzdWIiOiJ4In0",
            "alg none: [REDACTED JWT ",
        ),
        (
            "Authorization: Bearer opaque-token-123",
            "opaque-token-123",
            "Authorization: Bearer [REDACTED]",
        ),
        ("authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "authorization: Basic [REDACTED]"),
        (
            'Proxy-Authorization: Digest username="a", response="f00"',
            "f00",
            "Proxy-Authorization: Digest [REDACTED]",
        ),
        (
            "{'Authorization': 'Bearer abc', 'Host': 'h'}",
            "abc",
            "{'Authorization': 'Bearer [REDACTED]', 'Host': 'h'}",
        ),
        (
            "postgresql://orders:s3cr3t@127.0.0.1:5432/shop",
            "s3cr3t",
            "postgresql://orders:[REDACTED]@127.0.0.1:5432/shop",
        ),
        (
            "host=127.0.0.1 password='a b' user=orders",
            "a b",
            "host=127.0.0.1 password=[REDACTED] user=orders",
        ),
        ("PGPASSWORD=hunter2 psql", "hunter2", "PGPASSWORD=[REDACTED] psql"),
        (
            '{"password": "hunter2", "user": "x"}',
            "hunter2",
            '{"password": "[REDACTED]", "user": "x"}',
        ),
    ],
    ids=[
        "pkcs8",
        "sec1",
        "truncated-pem",
        "jwt",
        "jwt-alg-none",
        "bearer",
        "basic",
        "digest",
        "dict-repr",
        "dsn-url",
        "dsn-keyword",
        "pgpassword",
        "json-password",
    ],
)
def test_each_secret_kind_is_redacted(text: str, secret: str, expected: str) -> None:
    cleaned = scrub(text)
    assert secret not in cleaned
    assert cleaned.startswith(expected) if expected.endswith(" ") else expected in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "GET /orders/42 -> 200 in 1.3 ms",
        "spiffe://shop.test/orders connected from 127.0.0.1:51234",
        "postgresql://127.0.0.1:5432/shop?sslmode=verify-full",
        "the authorization stage took 21 us",
        "eyes on the ball. nothing here",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert scrub(text) == text


def test_scrub_is_idempotent() -> None:
    text = f"Authorization: Bearer {JWT}\n{PEM}\npostgresql://u:p@h password=x"
    once = scrub(text)
    assert scrub(once) == once


def test_same_token_same_fingerprint_different_token_different() -> None:
    assert scrub(JWT) == scrub(JWT)
    assert scrub(JWT) != scrub(JWT + "x")


def test_secret_repr_hides_the_value() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2"


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    formatter = ScrubbingFormatter("%(message)s")
    record = logging.LogRecord(
        "trustproof.t",
        logging.INFO,
        __file__,
        1,
        "sending %s",
        (f"Authorization: Bearer {JWT}",),
        None,
    )
    line = formatter.format(record)
    assert JWT not in line
    assert "[REDACTED JWT" in line


def test_scrubbed_traceback_keeps_the_story_and_drops_the_secret() -> None:
    try:
        raise RuntimeError(f"upstream said Authorization: Bearer {JWT}")
    except RuntimeError as exc:
        text = scrubbed_traceback(exc)
    assert text.startswith("Traceback (most recent call last):")
    assert "RuntimeError: upstream said Authorization: Bearer [REDACTED JWT" in text
    assert JWT not in text


# -- log records: every logger, every handler ------------------------------------------------------

RAW_REQUEST = (
    b"GET / HTTP/1.1\nAuthorization: Bearer opaque-s3cr3t-value\nX-Key: " + PEM.encode() + b"\n\n"
)


@pytest.fixture
def scrubbing_installed() -> Iterator[None]:
    """`install_scrubbing()` for one test, with the process-wide hooks it sets put back after."""
    saved = (
        logging.getLogRecordFactory(),
        sys.excepthook,
        threading.excepthook,
        sys.unraisablehook,
        list(logging.lastResort.filters) if logging.lastResort else [],
        list(logging.getLogger("aiohttp.server").filters),
    )
    install_scrubbing(excepthooks=True)
    try:
        yield
    finally:
        factory, sys.excepthook, threading.excepthook, sys.unraisablehook, filters, server = saved
        logging.setLogRecordFactory(factory)
        if logging.lastResort is not None:
            logging.lastResort.filters = filters
        logging.getLogger("aiohttp.server").filters = server


def parser_error() -> BaseException:
    """What aiohttp's HTTP parser raises for a bare-LF request: its message quotes the bytes."""
    try:
        raise BadStatusLine(error=f"Bad status line:\n  Invalid:\n\n  {RAW_REQUEST!r}\n  ^")
    except BadStatusLine as exc:
        return exc


def record_with(exc: BaseException | None = None, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        fields.pop("msg", "Error handling request from %s"),
        fields.pop("args", ("127.0.0.1",)),
        (type(exc), exc, exc.__traceback__) if exc is not None else None,
    )
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def formatted(record: logging.LogRecord) -> str:
    """What a plain (non-scrubbing) handler of some library or test runner would write."""
    return logging.Formatter("%(levelname)s %(name)s %(message)s").format(record)


def test_a_parser_traceback_keeps_the_story_but_not_the_request_bytes() -> None:
    record = scrub_record(record_with(parser_error()))
    text = formatted(record)
    assert "Traceback (most recent call last):" in text
    assert "aiohttp.http_exceptions.BadStatusLine: [message withheld" in text
    assert "opaque-s3cr3t-value" not in text
    assert "MIGHAgEAMBMG" not in text
    assert record.exc_info is None  # no handler can format the live exception again


def test_the_unscrubbed_record_twin_leaks() -> None:
    """The twin: the same record through a plain formatter, not scrubbed first, leaks both."""
    text = formatted(record_with(parser_error()))
    assert "opaque-s3cr3t-value" in text
    assert "MIGHAgEAMBMG" in text


def test_a_parser_error_as_cause_or_context_is_withheld_too() -> None:
    try:
        try:
            raise parser_error()
        except BadStatusLine as inner:
            raise RuntimeError("while answering") from inner
    except RuntimeError as outer:
        text = format_exception_scrubbed(outer)
    assert "opaque-s3cr3t-value" not in text
    assert "direct cause of the following exception" in text
    assert text.rstrip().endswith("RuntimeError: while answering")


def test_record_arguments_messages_and_stacks_are_scrubbed() -> None:
    record = record_with(
        msg="sending %s with %r",
        args=(f"Authorization: Bearer {JWT}", {"password": "hunter2"}),
        stack_info=f"Stack (most recent call last):\n  token={JWT}",
    )
    scrub_record(record)
    text = formatted(record) + (record.stack_info or "")
    assert JWT not in text
    assert "hunter2" not in text
    assert record.args == ()
    assert scrub_record(record) is record  # once is enough: idempotent


def test_an_exc_text_formatted_earlier_is_scrubbed() -> None:
    record = record_with(exc_text=f"Traceback ...\nValueError: Authorization: Bearer {JWT}")
    assert JWT not in formatted(scrub_record(record))


def test_a_bad_format_string_still_logs_and_scrubs() -> None:
    record = scrub_record(record_with(msg=f"token {JWT} %d", args=("not a number",)))
    assert "could not be formatted" in record.getMessage()
    assert JWT not in record.getMessage()


def test_the_filter_scrubs_and_keeps_every_record() -> None:
    record = record_with(parser_error())
    assert ScrubbingFilter().filter(record) is True
    assert "opaque-s3cr3t-value" not in formatted(record)


@pytest.mark.usefixtures("scrubbing_installed")
def test_after_install_no_logger_and_no_handler_can_bypass_the_scrubber() -> None:
    """A library logger (aiohttp's) with a plain handler of its own: already scrubbed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # no filter, no scrubbing formatter
    library = logging.getLogger("aiohttp.server.test-scrub")
    library.addHandler(handler)
    library.propagate = False
    try:
        library.error("Error handling request from %s", "127.0.0.1", exc_info=parser_error())
        library.warning("header %s", f"Authorization: Bearer {JWT}")
    finally:
        library.removeHandler(handler)
    text = stream.getvalue()
    assert "Error handling request from 127.0.0.1" in text
    assert "[message withheld" in text
    assert "opaque-s3cr3t-value" not in text
    assert JWT not in text


@pytest.mark.usefixtures("scrubbing_installed")
def test_after_install_uncaught_exceptions_are_printed_scrubbed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    exc = parser_error()
    sys.excepthook(type(exc), exc, exc.__traceback__)
    thread = threading.Thread(target=lambda: None, name="worker")
    threading.excepthook(
        threading.ExceptHookArgs([RuntimeError, RuntimeError(f"t={JWT}"), None, thread])
    )
    err = capsys.readouterr().err
    assert "uncaught exception:" in err
    assert "uncaught exception in thread worker:" in err
    assert "opaque-s3cr3t-value" not in err
    assert JWT not in err


@pytest.mark.usefixtures("scrubbing_installed")
def test_install_is_idempotent() -> None:
    factory = logging.getLogRecordFactory()
    install_scrubbing()
    install_scrubbing(excepthooks=True)
    assert logging.getLogRecordFactory() is factory
    if logging.lastResort is not None:
        assert sum(isinstance(f, ScrubbingFilter) for f in logging.lastResort.filters) == 1


def test_escaped_line_breaks_in_a_repr_do_not_hide_secrets() -> None:
    text = repr(
        b"GET / HTTP/1.1\nAuthorization: Bearer opaque\nX: -----BEGIN PRIVATE KEY-----\n"
        b"MIGHAgEAMBMGByqGSM49\nAgEGCCqGSM49\n\n" + JWT.encode() + b"\npassword=hunter2\n"
    )
    out = scrub(text)
    for secret in ("opaque", "MIGHAgEAMBMG", "AgEGCCqGSM49", "MEUCIQDx3vS", "hunter2"):
        assert secret not in out
    alone = scrub(repr(b"X: -----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\nAgEGCCq\n\n" + JWT.encode()))
    assert "AgEGCCq" not in alone
    assert "MEUCIQDx3vS" not in alone  # the token is not swallowed half by the key rule


def test_parser_refusals_are_logged_at_most_once_per_interval() -> None:
    now = [0.0]
    limit = RawInputLogLimit(interval=10.0, clock=lambda: now[0])
    passed = []
    for i in range(1000):  # 1,000 refusals over 50 s
        now[0] = i * 0.05
        record = record_with(parser_error())
        if limit.filter(record):
            passed.append(record.getMessage())
    assert len(passed) == 5
    assert passed[0] == "Error handling request from 127.0.0.1"
    assert passed[1].endswith("(199 more like it since the last one not logged)")
    other = record_with(RuntimeError("a bug"))
    assert limit.filter(other)  # not raw input: never held back


def test_without_the_limit_every_refusal_is_a_traceback() -> None:
    """The twin: a plain filter lets each of them through."""
    assert all(ScrubbingFilter().filter(record_with(parser_error())) for _ in range(100))


@pytest.mark.usefixtures("scrubbing_installed")
def test_install_limits_aiohttps_server_logger() -> None:
    filters = logging.getLogger("aiohttp.server").filters
    assert sum(isinstance(f, RawInputLogLimit) for f in filters) == 1


def test_the_filter_scrubs_extra_fields_too() -> None:
    record = logging.getLogger("lib").makeRecord(
        "lib", logging.INFO, __file__, 1, "request", (), None, extra={"header": f"Bearer {JWT}"}
    )
    ScrubbingFilter().filter(record)
    assert JWT not in record.header
    assert record.getMessage() == "request"


@pytest.mark.usefixtures("scrubbing_installed")
def test_after_install_an_ignored_exception_and_its_object_are_printed_scrubbed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    holder = {"Authorization": f"Bearer {JWT}"}
    args = SimpleNamespace(
        exc_type=RuntimeError,
        exc_value=RuntimeError(f"t={JWT}"),
        exc_traceback=None,
        err_msg="Exception ignored in",
        object=holder,
    )
    sys.unraisablehook(args)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "Exception ignored in" in err
    assert JWT not in err
