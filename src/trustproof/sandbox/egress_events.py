"""What the services themselves tried to reach: the firewall's drop counters and the resolver's
refused queries, merged per service into `EgressEvent`s ("orders tried 192.0.2.10:443 (tcp)
3 times — blocked", "orders looked up api.evil.example 2 times — refused").

Two sources on the isolated backend:

* the nftables counters of each service namespace (`trustproof.sandbox.firewall.read_drops`): one
  `DropCount(proto, address, port, packets)` per destination a packet was rejected for — a UDP
  datagram is one packet, and a TCP connect one when TCP is rejected with a reset (``reject with
  tcp reset``: refused at once; an ICMP reject reaches a socket still inside `connect()` as a
  soft error, the SYN is sent again a second later, and the connect counts twice);
* the sandbox resolver of each namespace (`trustproof.sandbox.resolver`), whose `record` callback
  is `EgressLedger.recorder(service)`: every query it did not answer (an undeclared name, a
  malformed query) is one attempt. Each query counts: a glibc look-up asks A and AAAA (two), and
  asks again when refused.

The probes of the ``egress`` family make attempts of their own from inside the same namespaces
(`SandboxView.egress_attempt`): whatever makes them notes each with `EgressLedger.note_own` (one
connect, one datagram or one query each), and they are subtracted, so that what is reported is
what the services did. A count never goes below zero.

Bounded: a service inventing names (DNS exfiltration) fills at most `MAX_NAMES` distinct names
per service; further distinct names are counted under `OVERFLOW_NAME`. ICMP and other protocols
have no `EgressEvent` kind (``tcp``, ``udp``, ``dns``) and are left out here (see
`uncounted_protocols` for what was left out).

`audit_records` turns events into the alert-worthy audit records ``egress.drop`` and
``dns.refused`` (one per event, with its count).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from trustproof.sandbox.dns_answer import MALFORMED, DnsQuery
from trustproof.view.egress import EgressAttempt, EgressEvent, EventKind

MAX_NAMES = 1000
OVERFLOW_NAME = "(other names)"
MALFORMED_NAME = "(malformed query)"
RESOLVER_PORT = 53

Key = tuple[EventKind, str, int | None]  # kind, destination, port


class DropLike(Protocol):
    """The firewall's `DropCount` (`trustproof.sandbox.firewall`), read structurally."""

    @property
    def proto(self) -> str: ...

    @property
    def address(self) -> str: ...

    @property
    def port(self) -> int | None: ...

    @property
    def packets(self) -> int: ...


def drop_key(drop: DropLike) -> Key | None:
    """The event key of a drop counter; None for protocols without an event kind (icmp, other)."""
    if drop.proto == "tcp":
        return ("tcp", drop.address, drop.port)
    if drop.proto == "udp":
        return ("udp", drop.address, drop.port)
    return None


def own_key(attempt: EgressAttempt) -> Key | None:
    """The event key a probe's own attempt adds to, if any: TCP and UDP to an address are counted
    by the firewall, a DNS query through the namespace's own resolver by the resolver (elsewhere
    it is a UDP datagram to port 53). HTTP and PostgreSQL attempts go through the namespace's
    relays on loopback, which the firewall lets through: they count nowhere."""
    if attempt.kind in ("tcp", "udp"):
        return (attempt.kind, attempt.host, attempt.port)
    if attempt.kind == "dns":
        if _is_loopback(attempt.host) and attempt.port == RESOLVER_PORT:
            return ("dns", (attempt.name or "").lower().removesuffix("."), None)
        return ("udp", attempt.host, attempt.port)
    return None


def merge(
    drops: Mapping[str, Iterable[DropLike]],
    refused: Mapping[str, Mapping[str, int]],
    own: Mapping[str, Mapping[Key, int]] | None = None,
) -> tuple[EgressEvent, ...]:
    """Per service: its drop counters and refused DNS names (name -> queries), minus the probes'
    `own` attempts; sorted by service, kind, destination, port; zero counts left out."""
    own = own or {}
    totals: dict[str, Counter[Key]] = {}
    for service, counters in drops.items():
        seen = totals.setdefault(service, Counter())
        for drop in counters:
            key = drop_key(drop)
            if key is not None and drop.packets > 0:
                seen[key] += drop.packets
    for service, names in refused.items():
        seen = totals.setdefault(service, Counter())
        for name, count in names.items():
            if count > 0:
                seen[("dns", name, None)] += count
    events = []
    for service, seen in totals.items():
        mine = own.get(service, {})
        for (kind, destination, port), count in seen.items():
            left = count - mine.get((kind, destination, port), 0)
            if left > 0:
                events.append(EgressEvent(service, kind, destination, port, left))
    events.sort(key=lambda e: (e.service, e.kind, e.destination, -1 if e.port is None else e.port))
    return tuple(events)


def uncounted_protocols(drops: Mapping[str, Iterable[DropLike]]) -> dict[str, int]:
    """Packets per service dropped for protocols `merge` has no event kind for (icmp, other)."""
    left: Counter[str] = Counter()
    for service, counters in drops.items():
        for drop in counters:
            if drop_key(drop) is None and drop.packets > 0:
                left[service] += drop.packets
    return dict(left)


DropReader = Callable[[], Mapping[str, Iterable[DropLike]]]


class EgressLedger:
    """The refused DNS queries per service (from the resolvers), the probes' own attempts, and
    how to read the firewall's drop counters now (`read_drops`: service -> its counters, e.g.
    ``{s: firewall.read_drops(ns) for s, ns in namespaces.items()}``; None: no firewall).
    Thread-safe (resolvers run on the event loop, probes may note from anywhere).

    The isolated backend makes one per sandbox (`Sandbox.egress_ledger`) and passes
    `recorder(service)` to each namespace's resolver (`resolver.start_in_namespace`); whatever
    makes the egress probes' attempts calls `note_own` for each; `LiveView.egress_events` is
    `events()`."""

    def __init__(self, read_drops: DropReader | None = None, max_names: int = MAX_NAMES) -> None:
        self.read_drops = read_drops
        self._lock = threading.Lock()
        self._refused: dict[str, Counter[str]] = {}
        self._own: dict[str, Counter[Key]] = {}
        self._max_names = max_names

    def recorder(self, service: str) -> Callable[[DnsQuery], None]:
        """The `record` callback of `service`'s resolver."""

        def record(query: DnsQuery) -> None:
            if query.answered:
                return
            name = query.name or (MALFORMED_NAME if query.qtype == MALFORMED else "")
            name = name or f"({query.qtype.lower()} message)"
            with self._lock:
                seen = self._refused.setdefault(service, Counter())
                if name not in seen and len(seen) >= self._max_names:
                    name = OVERFLOW_NAME
                seen[name] += 1

        return record

    def note_own(self, service: str, attempt: EgressAttempt) -> None:
        """A probe made `attempt` from inside `service`'s namespace: not the service's doing."""
        key = own_key(attempt)
        if key is None:
            return
        with self._lock:
            self._own.setdefault(service, Counter())[key] += 1

    def refused(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {service: dict(names) for service, names in self._refused.items()}

    def own(self) -> dict[str, dict[Key, int]]:
        with self._lock:
            return {service: dict(keys) for service, keys in self._own.items()}

    def events(self) -> tuple[EgressEvent, ...]:
        """Everything the services tried so far (the firewall's counters read now)."""
        drops = self.read_drops() if self.read_drops is not None else {}
        return merge(drops, self.refused(), self.own())


def audit_records(events: Iterable[EgressEvent]) -> list[tuple[str, dict[str, Any]]]:
    """(kind, fields) of the audit record of each event: ``dns.refused`` for a name,
    ``egress.drop`` for an address."""
    records = []
    for event in events:
        fields: dict[str, Any] = {"service": event.service, "count": event.count}
        if event.kind == "dns":
            records.append(("dns.refused", {**fields, "name": event.destination}))
        else:
            records.append(
                (
                    "egress.drop",
                    {
                        **fields,
                        "proto": event.kind,
                        "address": event.destination,
                        "port": event.port,
                    },
                )
            )
    return records


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
