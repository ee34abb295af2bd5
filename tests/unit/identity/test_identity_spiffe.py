from __future__ import annotations

import pytest

from trustproof.identity import IdentityError, InvalidSpiffeId, SpiffeId
from trustproof.identity.spiffe import check_trust_domain

GOOD = [
    ("spiffe://shop.test/orders", "shop.test", "/orders", "orders"),
    ("spiffe://shop.test/ns/prod/sa/orders", "shop.test", "/ns/prod/sa/orders", "orders"),
    ("spiffe://a-b_c.9/Mixed.Case-path_1", "a-b_c.9", "/Mixed.Case-path_1", "Mixed.Case-path_1"),
    ("spiffe://shop.test/...", "shop.test", "/...", "..."),
    ("spiffe://shop.test", "shop.test", "", ""),
]

BAD = [
    ("", "scheme is missing"),
    ("shop.test/orders", "scheme is missing"),
    ("https://shop.test/orders", "scheme is missing"),
    ("spiffe:/shop.test/orders", "scheme is missing"),
    ("SPIFFE://shop.test/orders", "scheme must be lowercase"),
    ("Spiffe://shop.test/orders", "scheme must be lowercase"),
    ("spiffe:///orders", "trust domain is missing"),
    ("spiffe://", "trust domain is missing"),
    ("spiffe://Shop.test/orders", "uppercase"),
    ("spiffe://shop.test:8443/orders", "port"),
    ("spiffe://user@shop.test/orders", "userinfo"),
    ("spiffe://user:pw@shop.test/orders", "userinfo"),
    ("spiffe://shop test/orders", "not allowed"),
    ("spiffe://shöp.test/orders", "not allowed"),
    ("spiffe://shop.test/orders?x=1", "query"),
    ("spiffe://shop.test/orders#frag", "fragment"),
    ("spiffe://shop.test/", "ends with '/'"),
    ("spiffe://shop.test/orders/", "ends with '/'"),
    ("spiffe://shop.test//orders", "empty segment"),
    ("spiffe://shop.test/a//b", "empty segment"),
    ("spiffe://shop.test/./orders", "'.' segment"),
    ("spiffe://shop.test/a/../orders", "'..' segment"),
    ("spiffe://shop.test/..", "'..' segment"),
    ("spiffe://shop.test/or%64ers", "not allowed"),
    ("spiffe://shop.test/or ders", "not allowed"),
    ("spiffe://shop.test/örders", "not allowed"),
    ("spiffe://shop.test/" + "a" * 2030, "longer than 2048 bytes"),
    ("spiffe://" + "a" * 256 + "/x", "longer than 255"),
]


@pytest.mark.parametrize(("text", "trust_domain", "path", "name"), GOOD)
def test_parse_accepts_standard_ids(text: str, trust_domain: str, path: str, name: str) -> None:
    spiffe_id = SpiffeId.parse(text)
    assert (spiffe_id.trust_domain, spiffe_id.path, spiffe_id.name) == (trust_domain, path, name)
    assert str(spiffe_id) == text
    assert SpiffeId.parse(str(spiffe_id)) == spiffe_id


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_parse_refuses_what_the_standard_forbids(text: str, problem: str) -> None:
    with pytest.raises(InvalidSpiffeId, match=problem) as info:
        SpiffeId.parse(text)
    assert "hint:" in str(info.value)


def test_invalid_spiffe_id_is_a_value_error_and_an_identity_error() -> None:
    with pytest.raises(ValueError, match="bad SPIFFE ID"):
        SpiffeId.parse("spiffe://shop.test/a b")
    assert issubclass(InvalidSpiffeId, IdentityError)


def test_id_of_exactly_2048_bytes_is_accepted_and_one_more_is_not() -> None:
    head = "spiffe://shop.test/"
    longest = head + "a" * (2048 - len(head))
    assert str(SpiffeId.parse(longest)) == longest
    with pytest.raises(InvalidSpiffeId, match="2048"):
        SpiffeId.parse(longest + "a")


def test_for_name_builds_a_one_segment_id() -> None:
    spiffe_id = SpiffeId.for_name("shop.test", "orders")
    assert str(spiffe_id) == "spiffe://shop.test/orders"
    assert spiffe_id.name == "orders"
    assert spiffe_id.is_workload


@pytest.mark.parametrize(
    ("trust_domain", "name", "problem"),
    [
        ("shop.test", "ns/orders", "has a '/'"),
        ("shop.test", "", "ends with '/'"),
        ("shop.test", "..", "'..' segment"),
        ("shop.test", "or ders", "not allowed"),
        ("Shop.test", "orders", "not allowed"),
        ("", "orders", "trust domain is empty"),
    ],
)
def test_for_name_refuses_bad_parts(trust_domain: str, name: str, problem: str) -> None:
    with pytest.raises(InvalidSpiffeId, match=problem):
        SpiffeId.for_name(trust_domain, name)


def test_direct_construction_is_validated_like_parse() -> None:
    assert str(SpiffeId("shop.test", "/orders")) == "spiffe://shop.test/orders"
    with pytest.raises(InvalidSpiffeId, match="must start with '/'"):
        SpiffeId("shop.test", "orders")


def test_trust_domain_id_is_not_a_workload() -> None:
    assert not SpiffeId.parse("spiffe://shop.test").is_workload


def test_check_trust_domain() -> None:
    assert check_trust_domain("shop.test") == "shop.test"
    with pytest.raises(InvalidSpiffeId, match="characters ':'"):
        check_trust_domain("shop.test:443")


def test_ids_compare_by_value_and_are_hashable() -> None:
    assert SpiffeId.parse("spiffe://shop.test/orders") == SpiffeId.for_name("shop.test", "orders")
    assert SpiffeId.parse("spiffe://shop.test/Orders") != SpiffeId.for_name("shop.test", "orders")
    assert len({SpiffeId.for_name("shop.test", "a"), SpiffeId.for_name("shop.test", "a")}) == 1
