"""What the sandbox resolver answers to one DNS query: sans-I/O, bytes in, bytes out.

A service in its own network namespace resolves names through the sandbox resolver
(`trustproof.sandbox.resolver`), and only the names the sandbox declares (its dependencies'
hosts, ``localhost``) resolve. `answer(query, names)` decides one query:

==========================================  ====================================================
query                                       answer (``DnsQuery.answered``)
==========================================  ====================================================
``A`` for a declared name                   NOERROR with the declared IPv4 address (True)
any other type for a declared name          NOERROR, no answer: the name exists, it has no such
                                            record (True)
any type for any other name                 **REFUSED** (False)
a class other than IN                       REFUSED (False)
an opcode other than QUERY                  NOTIMP (False)
no question, several, or a broken question  FORMERR when a header can be read (False)
not a query, shorter than a header, or      nothing: dropped (False)
longer than `MAX_QUERY_BYTES`
==========================================  ====================================================

Names compare case-insensitively, with or without the trailing dot.

Why REFUSED and not NXDOMAIN: the resolver does not know that an undeclared name does not exist,
only that the sandbox will not resolve it; RFC 1035 defines REFUSED as "the name server refuses
to perform the specified operation for policy reasons", which is exactly this. NXDOMAIN would be a
false, cacheable statement about the outside world (and would send a glibc client on to its
search-list suffixes, each one more query for a name that was never going to resolve). A
service sees a failed lookup either way; the record says what it tried.

Every query gives a `DnsQuery` (the name, as the client wrote it but lower-cased and without the
final dot; the type's mnemonic; whether it was answered) for the resolver to record: a refused
one is an egress attempt of the service. This module never raises on the query's bytes (a
property test feeds it arbitrary ones); a `names` value that is not an IPv4 address is the
caller's mistake and a `ValueError` (`check_names` finds it before a resolver starts).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

MAX_QUERY_BYTES = 1232  # the EDNS buffer size DNS Flag Day 2020 settled on; a query is far smaller
HEADER = struct.Struct("!HHHHHH")  # id, flags, qdcount, ancount, nscount, arcount
ANSWER_TTL = 5  # seconds; the sandbox lives minutes, and a re-query costs nothing on loopback
MALFORMED = "malformed"  # DnsQuery.qtype of a query whose question could not be read
_QR = 0x8000
_OPCODE_MASK = 0x7800
_RD = 0x0100


@dataclass(frozen=True)
class DnsQuery:
    """One query the resolver received: the name asked (lower case, no final dot; "" when the
    question could not be read), the type (``A``, ``AAAA``, ``TXT``, ``TYPE65280``...; the opcode
    for a non-QUERY; `MALFORMED` when unreadable) and whether the resolver answered it."""

    name: str
    qtype: str
    answered: bool


def normal_name(name: str) -> str:
    """How names are compared: lower case, no final dot."""
    return name.lower().removesuffix(".")


def check_names(names: Mapping[str, str]) -> dict[str, str]:
    """`names` keyed by `normal_name`; `ValueError` naming the first value that is not an IPv4
    address."""
    checked = {}
    for name, address in names.items():
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise ValueError(f"{name}: {address!r} is not an IPv4 address") from None
        checked[normal_name(name)] = address
    return checked


def answer(query: bytes, names: Mapping[str, str]) -> tuple[bytes, DnsQuery]:
    """The reply to `query` (empty bytes: send nothing) and what to record of it."""
    if len(query) < HEADER.size or len(query) > MAX_QUERY_BYTES:
        return b"", DnsQuery("", MALFORMED, False)
    qid, flags = HEADER.unpack_from(query)[:2]
    if flags & _QR:
        return b"", DnsQuery("", MALFORMED, False)  # a response: never answer one (no loops)
    opcode = (flags & _OPCODE_MASK) >> 11
    if opcode != dns.opcode.QUERY:
        return _bare(qid, flags, dns.rcode.NOTIMP), DnsQuery("", dns.opcode.to_text(opcode), False)
    try:
        message = dns.message.from_wire(query, ignore_trailing=False)
    except (dns.exception.DNSException, ValueError, UnicodeError, struct.error):
        return _bare(qid, flags, dns.rcode.FORMERR), DnsQuery("", MALFORMED, False)
    if len(message.question) != 1:
        return _bare(qid, flags, dns.rcode.FORMERR), DnsQuery("", MALFORMED, False)
    return _decide(message, check_names(names))


def _decide(message: dns.message.Message, names: Mapping[str, str]) -> tuple[bytes, DnsQuery]:
    question = message.question[0]
    name = normal_name(question.name.to_text())
    qtype = dns.rdatatype.to_text(question.rdtype)
    reply = dns.message.make_response(message)
    reply.flags |= dns.flags.RA
    address = names.get(name)
    if question.rdclass != dns.rdataclass.IN or address is None:
        reply.set_rcode(dns.rcode.REFUSED)
        return reply.to_wire(), DnsQuery(name, qtype, False)
    if question.rdtype == dns.rdatatype.A:
        rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, dns.rdatatype.A)
        rrset.update_ttl(ANSWER_TTL)
        rrset.add(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, address))
        reply.answer.append(rrset)
    return reply.to_wire(), DnsQuery(name, qtype, True)


def _bare(qid: int, flags: int, rcode: int) -> bytes:
    """A header-only reply (no question echoed): for a query whose question cannot be used."""
    reply_flags = _QR | (flags & (_OPCODE_MASK | _RD)) | dns.flags.RA | (rcode & 0xF)
    return HEADER.pack(qid, reply_flags, 0, 0, 0, 0)
