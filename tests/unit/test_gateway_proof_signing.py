"""The gateway proof (sans-I/O): each refusal reason next to its passing twin, replay onto any
other request, the constant-time comparison, and a module a service can import cheaply."""

from __future__ import annotations

import ast
import base64
import hmac
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from trustproof.gateway import proof
from trustproof.gateway.proof import (
    KEY_BYTES,
    PROOF_HEADER,
    ProofCheck,
    new_key,
    sign_proof,
    verify_proof,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW = 1_900_000_000.0
IDENTITY = (
    ("Host", "127.0.0.1:18101"),
    ("Accept", "application/json"),
    ("X-Trustproof-Request-Id", "3f9c0d6a1b2e4f5a8c7d6e5f4a3b2c1d"),
    ("X-Trustproof-Principal", "alice"),
    ("X-Trustproof-Principal-Kind", "persona"),
    ("X-Trustproof-Roles", "customer"),
    ("X-Trustproof-Route", "/products/{id}"),
)


def signed(
    headers: tuple[tuple[str, str], ...] = IDENTITY,
    *,
    key: bytes = KEY,
    method: str = "GET",
    target: str = "/products/1",
    at: float = NOW,
) -> tuple[tuple[str, str], ...]:
    """`headers` as the gateway forwards them: with the proof appended."""
    return (*headers, (PROOF_HEADER, sign_proof(key, method, target, headers, at)))


def check(
    headers: tuple[tuple[str, str], ...],
    *,
    key: bytes = KEY,
    method: str = "GET",
    target: str = "/products/1",
    now: float = NOW,
) -> ProofCheck:
    return verify_proof(key, method, target, headers, now)


def replace_header(
    headers: tuple[tuple[str, str], ...], name: str, value: str
) -> tuple[tuple[str, str], ...]:
    return tuple((n, value if n == name else v) for n, v in headers)


# --- the passing case --------------------------------------------------------------------------


def test_a_signed_request_verifies() -> None:
    assert check(signed()) == ProofCheck(True, "ok")


def test_the_header_has_the_documented_shape() -> None:
    value = dict(signed())[PROOF_HEADER]
    version, t, sig = value.split(";")
    assert (version, t) == ("v1", f"t={int(NOW)}")
    assert sig.startswith("sig=")
    assert base64.urlsafe_b64decode(sig.removeprefix("sig=") + "=") != b""
    assert len(sig.removeprefix("sig=")) == 43  # 32 bytes of HMAC-SHA256, base64url, unpadded


def test_header_names_match_in_any_case() -> None:
    """The service's parser keeps the case the gateway sent; a proxy may lower it (HTTP/2)."""
    lowered = tuple((name.lower(), value) for name, value in signed())
    assert check(lowered).ok


def test_the_client_spiffe_id_is_signed_when_present() -> None:
    with_peer = (*IDENTITY, ("X-Trustproof-Client-Spiffe-Id", "spiffe://shop.test/orders"))
    assert check(signed(with_peer)).ok
    forged = replace_header(
        signed(with_peer), "X-Trustproof-Client-Spiffe-Id", "spiffe://shop.test/payments"
    )
    assert check(forged) == ProofCheck(False, "bad-signature")


# --- missing -----------------------------------------------------------------------------------


def test_no_proof_is_missing() -> None:
    assert check(IDENTITY) == ProofCheck(False, "missing")


def test_forged_identity_headers_without_proof_are_missing() -> None:
    forged = (("X-Trustproof-Principal", "alice"), ("X-Trustproof-Roles", "customer,admin"))
    assert check(forged) == ProofCheck(False, "missing")


# --- malformed ---------------------------------------------------------------------------------


def _good_value() -> str:
    return dict(signed())[PROOF_HEADER]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: v.replace("v1;", "v2;"),
        lambda v: v.replace(f"t={int(NOW)}", "t=soon"),
        lambda v: v.replace(f"t={int(NOW)}", "t=-1"),
        lambda v: v.replace(f"t={int(NOW)}", "t=1" + "0" * 12),  # 13 digits
        lambda v: v[:-1],  # signature one character short
        lambda v: v + "A",  # one character long
        lambda v: v[:-1] + "=",  # padding / not base64url
        lambda v: v[:-1] + "+",  # base64, not base64url
        lambda v: v + ";kid=1",
        lambda v: v.replace(";", ","),
        lambda v: "",
    ],
    ids=[
        "version",
        "time-not-digits",
        "time-negative",
        "time-too-long",
        "sig-short",
        "sig-long",
        "sig-padded",
        "sig-not-url-safe",
        "extra-field",
        "wrong-separator",
        "empty",
    ],
)
def test_a_mangled_proof_is_malformed(mangle: Callable[[str], str]) -> None:
    headers = replace_header(signed(), PROOF_HEADER, mangle(_good_value()))
    assert check(headers) == ProofCheck(False, "malformed")
    assert check(signed()).ok  # the twin: the same proof, unmangled


def test_two_proofs_are_malformed() -> None:
    twice = (*signed(), (PROOF_HEADER.lower(), _good_value()))
    assert check(twice) == ProofCheck(False, "malformed")


@pytest.mark.parametrize("name", ["X-Trustproof-Principal", "x-trustproof-roles"])
def test_a_signed_header_given_twice_is_malformed(name: str) -> None:
    """The service might read one copy and the verifier the other: neither may be chosen."""
    repeated = (*signed(), (name, "admin"))
    assert check(repeated) == ProofCheck(False, "malformed")


@pytest.mark.parametrize("bad", ["alice\nx-trustproof-roles:admin", "alice\r", "alice\x00"])
def test_a_line_breaking_value_is_malformed(bad: str) -> None:
    headers = replace_header(signed(), "X-Trustproof-Principal", bad)
    assert check(headers) == ProofCheck(False, "malformed")


def test_the_gateway_refuses_to_sign_what_it_could_not_sign_unambiguously() -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        sign_proof(KEY, "GET", "/a\nb", IDENTITY, NOW)
    with pytest.raises(ValueError, match="repeated, or a proof is already present"):
        sign_proof(KEY, "GET", "/", (*IDENTITY, ("X-Trustproof-Principal", "bob")), NOW)
    with pytest.raises(ValueError, match="repeated, or a proof is already present"):
        sign_proof(KEY, "GET", "/", signed(), NOW)


# --- stale -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "reason"),
    [(0, "ok"), (30, "ok"), (31, "stale"), (3600, "stale"), (-30, "ok"), (-31, "stale")],
)
def test_freshness_window(age: float, reason: str) -> None:
    """A proof is good for 30 s either way; beyond that (an old replay, or clock skew between
    gateway and service) it is stale."""
    assert check(signed(), now=NOW + age).reason == reason


def test_the_window_is_configurable() -> None:
    headers = signed()
    assert verify_proof(KEY, "GET", "/products/1", headers, NOW + 5, max_age_seconds=5).ok
    late = verify_proof(KEY, "GET", "/products/1", headers, NOW + 6, max_age_seconds=5)
    assert late == ProofCheck(False, "stale")


def test_a_forgery_is_a_bad_signature_whatever_its_time() -> None:
    """The signature is checked before the time: `stale` always means an authentic proof."""
    forged = signed(key=OTHER_KEY, at=NOW - 3600)
    assert check(forged) == ProofCheck(False, "bad-signature")


# --- bad signature: another key, a tampered signature, replay onto another request --------------


def test_another_key_is_a_bad_signature() -> None:
    assert check(signed(key=OTHER_KEY)) == ProofCheck(False, "bad-signature")
    assert check(signed(key=OTHER_KEY), key=OTHER_KEY).ok  # the twin: its own key


def test_a_tampered_signature_is_a_bad_signature() -> None:
    value = _good_value()
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    headers = replace_header(signed(), PROOF_HEADER, flipped)
    assert check(headers) == ProofCheck(False, "bad-signature")


def test_a_changed_time_is_a_bad_signature() -> None:
    headers = replace_header(
        signed(), PROOF_HEADER, _good_value().replace(f"t={int(NOW)}", f"t={int(NOW) + 1}")
    )
    assert check(headers) == ProofCheck(False, "bad-signature")


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/admin/version"),  # another path
        ("GET", "/products/1?customer=bob"),  # another query
        ("GET", "/products/1/"),  # not the canonical target
        ("POST", "/products/1"),  # another method
        ("get", "/products/1"),  # methods are case-sensitive (RFC 9110)
    ],
)
def test_replay_onto_another_request_line_is_a_bad_signature(method: str, target: str) -> None:
    assert check(signed(), method=method, target=target) == ProofCheck(False, "bad-signature")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Trustproof-Principal", "bob"),
        ("X-Trustproof-Principal-Kind", "workload"),
        ("X-Trustproof-Roles", "customer,admin"),
        ("X-Trustproof-Route", "/admin/version"),
        ("X-Trustproof-Request-Id", "another-request"),
    ],
)
def test_replay_onto_another_identity_is_a_bad_signature(name: str, value: str) -> None:
    assert check(replace_header(signed(), name, value)) == ProofCheck(False, "bad-signature")


def test_an_added_signed_header_is_a_bad_signature() -> None:
    added = (*signed(), ("X-Trustproof-Client-Spiffe-Id", "spiffe://shop.test/orders"))
    assert check(added) == ProofCheck(False, "bad-signature")


def test_unsigned_headers_do_not_matter() -> None:
    assert check((*signed(), ("X-Request-Color", "blue"))).ok


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert check(signed()).ok
    assert not check(signed(key=OTHER_KEY)).ok
    assert len(compared) == 2


# --- keys and the module itself ----------------------------------------------------------------


def test_keys_are_fresh_and_32_bytes() -> None:
    first, second = new_key(), new_key()
    assert len(first) == len(second) == KEY_BYTES == 32
    assert first != second


@pytest.mark.parametrize("short", [b"", b"k" * 31])
def test_a_short_key_is_a_misconfiguration(short: bytes) -> None:
    with pytest.raises(ValueError, match=f"32 bytes or more, got {len(short)}"):
        sign_proof(short, "GET", "/", IDENTITY, NOW)
    with pytest.raises(ValueError, match=f"32 bytes or more, got {len(short)}"):
        verify_proof(short, "GET", "/", signed(), NOW)


def test_the_module_imports_the_standard_library_only() -> None:
    """Services import it (`from trustproof.gateway.proof import verify_proof`): nothing heavy."""
    tree = ast.parse(Path(proof.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    imported.discard("__future__")
    assert imported
    assert imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names
