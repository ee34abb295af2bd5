"""The sandbox resolver's decisions (`trustproof.sandbox.dns_answer`): declared names answered,
everything else refused and recorded, hostile bytes never a crash."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustproof.sandbox.dns_answer import (
    MALFORMED,
    MAX_QUERY_BYTES,
    DnsQuery,
    answer,
    check_names,
)

NAMES = {"payments.example": "127.0.0.1", "Ledger.Example.": "127.0.0.2"}


def ask(name: str, rdtype: str = "A", **kwargs: object) -> tuple[dns.message.Message, DnsQuery]:
    query = dns.message.make_query(name, rdtype, **kwargs)  # type: ignore[arg-type]
    wire, seen = answer(query.to_wire(), NAMES)
    reply = dns.message.from_wire(wire)
    assert reply.id == query.id
    assert reply.flags & dns.flags.QR
    return reply, seen


def addresses(reply: dns.message.Message) -> list[str]:
    return [rdata.address for rrset in reply.answer for rdata in rrset]


def test_a_query_for_a_declared_name_gets_its_address() -> None:
    reply, seen = ask("payments.example")
    assert reply.rcode() == dns.rcode.NOERROR
    assert addresses(reply) == ["127.0.0.1"]
    assert seen == DnsQuery("payments.example", "A", True)


@pytest.mark.parametrize("name", ["PAYMENTS.Example.", "payments.example.", "ledger.EXAMPLE"])
def test_names_match_whatever_the_case_and_final_dot(name: str) -> None:
    reply, seen = ask(name)
    assert reply.rcode() == dns.rcode.NOERROR
    assert addresses(reply) in (["127.0.0.1"], ["127.0.0.2"])
    assert seen.answered
    assert seen.name == name.lower().removesuffix(".")


def test_aaaa_for_a_declared_name_is_noerror_without_an_answer() -> None:
    reply, seen = ask("payments.example", "AAAA")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert seen == DnsQuery("payments.example", "AAAA", True)


@pytest.mark.parametrize("rdtype", ["A", "AAAA", "TXT", "MX", "ANY"])
def test_an_undeclared_name_is_refused_and_recorded(rdtype: str) -> None:
    reply, seen = ask("api.evil.example", rdtype)
    assert reply.rcode() == dns.rcode.REFUSED
    assert reply.answer == []
    assert seen == DnsQuery("api.evil.example", rdtype, False)


def test_a_subdomain_of_a_declared_name_is_not_declared() -> None:
    reply, seen = ask("leak.payments.example")
    assert reply.rcode() == dns.rcode.REFUSED
    assert not seen.answered


def test_a_class_other_than_in_is_refused_even_for_a_declared_name() -> None:
    reply, seen = ask("payments.example", "A", rdclass="CH")
    assert reply.rcode() == dns.rcode.REFUSED
    assert not seen.answered


def test_edns_queries_get_an_edns_reply() -> None:
    reply, seen = ask("payments.example", use_edns=0, payload=1232)
    assert reply.edns == 0
    assert addresses(reply) == ["127.0.0.1"]
    assert seen.answered


def test_two_questions_are_a_format_error() -> None:
    query = dns.message.make_query("payments.example", "A")
    query.question.append(dns.message.make_query("api.evil.example", "A").question[0])
    wire, seen = answer(query.to_wire(), NAMES)
    reply = dns.message.from_wire(wire)
    assert reply.rcode() == dns.rcode.FORMERR
    assert reply.id == query.id
    assert seen == DnsQuery("", MALFORMED, False)


def test_a_truncated_question_is_a_format_error() -> None:
    wire = dns.message.make_query("payments.example", "A").to_wire()
    reply_wire, seen = answer(wire[:-3], NAMES)
    assert dns.message.from_wire(reply_wire).rcode() == dns.rcode.FORMERR
    assert seen == DnsQuery("", MALFORMED, False)


def test_an_update_is_not_implemented() -> None:
    query = dns.message.make_query("payments.example", "A")
    query.set_opcode(dns.opcode.UPDATE)
    wire, seen = answer(query.to_wire(), NAMES)
    assert dns.message.from_wire(wire).rcode() == dns.rcode.NOTIMP
    assert seen == DnsQuery("", "UPDATE", False)


def test_responses_short_and_oversized_packets_are_dropped() -> None:
    query = dns.message.make_query("payments.example", "A")
    response = dns.message.make_response(query).to_wire()
    assert answer(response, NAMES) == (b"", DnsQuery("", MALFORMED, False))
    assert answer(b"\x00" * 11, NAMES)[0] == b""
    assert answer(query.to_wire() + b"\x00" * MAX_QUERY_BYTES, NAMES)[0] == b""


def test_a_name_mapped_to_something_other_than_ipv4_is_the_callers_mistake() -> None:
    with pytest.raises(ValueError, match=r"payments.example: '::1' is not an IPv4"):
        check_names({"payments.example": "::1"})


def _query_wire(name: str, rdtype: int) -> bytes:
    return dns.message.make_query(name, rdtype).to_wire()


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
valid_queries = st.builds(
    _query_wire,
    st.lists(labels, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda name: name not in {"payments.example", "ledger.example"}),
    st.sampled_from([1, 28, 16, 15, 255, 65280]),
)


@given(st.binary(max_size=MAX_QUERY_BYTES + 16))
def test_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    wire, seen = answer(data, NAMES)
    assert isinstance(seen, DnsQuery)
    if wire:
        assert dns.message.from_wire(wire).flags & dns.flags.QR


declared_queries = st.builds(
    _query_wire,
    st.sampled_from(["payments.example", "LEDGER.example."]),
    st.sampled_from([1, 28, 16, 255]),
)


@given(
    valid_queries | declared_queries,
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8),
)
def test_never_raises_on_damaged_queries(wire: bytes, damage: list[tuple[int, int]]) -> None:
    data = bytearray(wire)
    for position, value in damage:
        if position < len(data):
            data[position] = value
    reply, seen = answer(bytes(data), NAMES)
    assert isinstance(reply, bytes)
    if seen.answered:
        assert seen.name in {"payments.example", "ledger.example"}


@given(valid_queries)
def test_only_declared_names_are_ever_answered(wire: bytes) -> None:
    reply, seen = answer(wire, NAMES)
    assert not seen.answered
    assert dns.message.from_wire(reply).rcode() == dns.rcode.REFUSED
    assert seen.qtype == dns.rdatatype.to_text(dns.message.from_wire(wire).question[0].rdtype)
