"""The scrubber redacts each kind of secret and leaves ordinary text alone."""

from __future__ import annotations

import logging

import pytest

from trustproof.scrub import ScrubbingFormatter, Secret, fingerprint, scrub, scrubbed_traceback

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
