"""What the services themselves tried (`trustproof.sandbox.egress_events`): drop counters and
refused DNS queries merged per service, the probes' own attempts subtracted, bounded."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from trustproof.sandbox.dns_answer import MALFORMED, DnsQuery
from trustproof.sandbox.egress_events import (
    MALFORMED_NAME,
    OVERFLOW_NAME,
    EgressLedger,
    audit_records,
    merge,
    own_key,
    uncounted_protocols,
)
from trustproof.view import EgressAttempt, EgressEvent


@dataclass(frozen=True)
class Drop:  # the firewall's DropCount, as pinned
    proto: str
    address: str
    port: int | None
    packets: int


DROPS = {
    "orders": [
        Drop("tcp", "192.0.2.10", 443, 3),
        Drop("udp", "198.51.100.10", 123, 1),
        Drop("icmp", "192.0.2.10", None, 4),
        Drop("tcp", "10.77.0.3", 18103, 0),
    ],
    "payments": [],
}


def test_drops_and_refused_names_become_events_per_service() -> None:
    events = merge(DROPS, {"orders": {"api.evil.example": 2}, "storefront": {"x.example": 1}})
    assert events == (
        EgressEvent("orders", "dns", "api.evil.example", None, 2),
        EgressEvent("orders", "tcp", "192.0.2.10", 443, 3),
        EgressEvent("orders", "udp", "198.51.100.10", 123, 1),
        EgressEvent("storefront", "dns", "x.example", None, 1),
    )
    assert uncounted_protocols(DROPS) == {"orders": 4}


def test_the_probes_own_attempts_are_subtracted_never_below_zero() -> None:
    ledger = EgressLedger(read_drops=lambda: DROPS)
    record = ledger.recorder("orders")
    for _ in range(3):
        record(DnsQuery("example.com", "A", False))
    ledger.note_own("orders", EgressAttempt("tcp", "192.0.2.10", 443))
    ledger.note_own("orders", EgressAttempt("udp", "198.51.100.10", 123))
    ledger.note_own("orders", EgressAttempt("udp", "198.51.100.10", 123))
    ledger.note_own("orders", EgressAttempt("dns", "127.0.0.1", 53, name="Example.COM."))
    ledger.note_own("orders", EgressAttempt("http", "127.0.0.1", 8443, path="/admin/tokens"))
    assert ledger.events() == (
        EgressEvent("orders", "dns", "example.com", None, 2),
        EgressEvent("orders", "tcp", "192.0.2.10", 443, 2),
    )


def test_nothing_tried_is_no_event() -> None:
    ledger = EgressLedger(read_drops=lambda: {"orders": []})
    ledger.recorder("orders")(DnsQuery("payments.example", "A", True))  # declared: answered
    assert ledger.events() == ()
    assert EgressLedger().events() == ()  # no firewall, no resolver: nothing seen


def test_a_dns_attempt_elsewhere_than_the_resolver_is_a_udp_datagram() -> None:
    assert own_key(EgressAttempt("dns", "192.0.2.10", 53, name="x")) == ("udp", "192.0.2.10", 53)
    assert own_key(EgressAttempt("dns", "127.0.0.1", 53, name="X.")) == ("dns", "x", None)
    assert own_key(EgressAttempt("postgres", "127.0.0.1", 5432, role="admin")) is None


def test_malformed_and_non_query_messages_are_counted_under_a_name_of_their_own() -> None:
    ledger = EgressLedger()
    ledger.recorder("orders")(DnsQuery("", MALFORMED, False))
    ledger.recorder("orders")(DnsQuery("", "UPDATE", False))
    assert ledger.refused() == {"orders": {MALFORMED_NAME: 1, "(update message)": 1}}


def test_made_up_names_are_bounded_per_service() -> None:
    ledger = EgressLedger(max_names=3)
    record = ledger.recorder("orders")
    for i in range(10):
        record(DnsQuery(f"{i}.exfil.example", "TXT", False))
    record(DnsQuery("0.exfil.example", "TXT", False))  # a name already counted keeps counting
    assert ledger.refused() == {
        "orders": {
            "0.exfil.example": 2,
            "1.exfil.example": 1,
            "2.exfil.example": 1,
            OVERFLOW_NAME: 7,
        }
    }


def test_each_event_is_an_audit_record_of_its_kind() -> None:
    records = audit_records(
        (
            EgressEvent("orders", "tcp", "192.0.2.10", 443, 3),
            EgressEvent("orders", "dns", "api.evil.example", None, 2),
        )
    )
    assert records == [
        (
            "egress.drop",
            {"service": "orders", "count": 3, "proto": "tcp", "address": "192.0.2.10", "port": 443},
        ),
        ("dns.refused", {"service": "orders", "count": 2, "name": "api.evil.example"}),
    ]


ADDRESSES = st.sampled_from(["192.0.2.10", "198.51.100.10", "10.77.0.3"])
drops = st.builds(
    Drop,
    st.sampled_from(["tcp", "udp", "icmp", "other"]),
    ADDRESSES,
    st.integers(1, 3),
    st.integers(0, 9),
)
own_attempts = st.builds(
    EgressAttempt, st.sampled_from(["tcp", "udp"]), ADDRESSES, st.integers(1, 3)
)


@given(st.lists(drops, max_size=12), st.lists(own_attempts, max_size=12))
def test_events_are_what_the_counters_say_minus_the_probes_never_negative(
    counters: list[Drop], attempts: list[EgressAttempt]
) -> None:
    ledger = EgressLedger(read_drops=lambda: {"orders": counters})
    for attempt in attempts:
        ledger.note_own("orders", attempt)
    events = ledger.events()
    assert all(event.count > 0 for event in events)
    seen: Counter[tuple[str, str, int | None]] = Counter()
    for drop in counters:
        if drop.proto in ("tcp", "udp"):
            seen[(drop.proto, drop.address, drop.port)] += drop.packets
    mine = Counter((a.kind, a.host, a.port) for a in attempts)
    expected = {key: seen[key] - mine[key] for key in seen if seen[key] > mine[key]}
    assert {(e.kind, e.destination, e.port): e.count for e in events} == expected
    assert len(events) == len(expected)  # one event per destination
