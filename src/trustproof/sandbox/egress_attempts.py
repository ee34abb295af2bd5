"""One outbound attempt from inside a service's network namespace (`EgressAttempt` → result).

    result = await attempt(ns.socket, EgressAttempt("tcp", "192.0.2.10", 443), timeout=1.0)

Pure socket work: the caller hands over a factory that makes sockets *in the right namespace*
(the isolated backend's ``NetNamespace.socket``; a socket keeps the namespace it was made in),
and everything here runs on the asyncio loop with non-blocking sockets. Nothing is ever
resolved by name here — a name would be looked up with the *host's* resolver — so `host` must
be an IP address; a DNS name is only ever sent as a query to the resolver inside the namespace.

What each kind does:

* ``tcp`` — a connect; established is ``connected``;
* ``udp`` — one datagram on a connected socket (an NTP client request to port 123, a DNS query
  to 53, a short text elsewhere), then a wait for any answer (``answered``); a drop is expected
  to look like a ``timeout``, an ICMP unreachable like ``blocked``;
* ``dns`` — an ``A`` query for `name` to `host:port` (the sandbox resolver, 127.0.0.1:53) in
  dnspython's wire format; NXDOMAIN or REFUSED is ``refused``, NOERROR ``answered`` (with the
  addresses), any other rcode an ``error``;
* ``http`` — TLS with the caller's context (the service's own SVID), then ``POST path`` with
  the admin mint body ``{"subject": name, "audience": name}``; 401/403 is ``refused``, 2xx is
  ``connected`` (a token was minted: its body is never read into the detail), anything else an
  ``error`` (a 400 may come after the identity check, so it is no proof of a refusal); a TLS
  alert, or the connection closed before any answer (how a TLS 1.3 server refusing the
  certificate may look), is ``refused``;
* ``postgres`` — the PostgreSQL wire protocol's start over the socket: SSLRequest, TLS with the
  caller's context, a StartupMessage for user `role` and database `name`; AuthenticationOk is
  ``connected``, an ErrorResponse (FATAL: certificate authentication failed …) or a request for a
  password is ``refused``. Spoken here rather than with ``psql`` under ``ip netns exec``: the
  namespace is reached through the socket factory alone (no process, no files for the key, no
  libpq environment to leak in), and the three messages that decide a login are all it needs.

Errors of the network layer (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EPERM/EACCES from a
firewall, EADDRNOTAVAIL) are ``blocked``; any other failure is an ``error`` — never a pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import socket
import ssl
import struct
from collections.abc import Callable

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from trustproof.view.egress import EgressAttempt, EgressResult

SocketFactory = Callable[[int, int], socket.socket]

NETWORK_ERRNOS: dict[int, str] = {
    errno.ECONNREFUSED: "connection refused (a reject rule, or nothing there)",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable (no route)",
    errno.EPERM: "not permitted (dropped by a firewall rule)",
    errno.EACCES: "not permitted (dropped by a firewall rule)",
    errno.EADDRNOTAVAIL: "no source address for that destination",
}
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
PROTOCOL_3_0 = 196608
NTP_CLIENT_REQUEST = b"\x23" + b"\x00" * 47  # LI 0, version 4, mode 3 (client)
MAX_ANSWER = 4096
# TLS 1.3 checks the client's certificate after the client's side of the handshake is done, and
# a server that refuses it may close without sending its alert (Python's asyncio servers do):
# nothing came back, nothing got through.
CLOSED_SILENTLY = "the server closed the connection without an answer (a TLS 1.3 refusal)"


async def attempt(
    make_socket: SocketFactory,
    a: EgressAttempt,
    timeout: float,
    *,
    tls: ssl.SSLContext | None = None,
) -> EgressResult:
    """Try `a` with sockets from `make_socket`; `tls` (the service's own certificate) is needed
    for ``http`` and ``postgres``. Never raises for a refusal, a drop or a transport failure."""
    try:
        address = ipaddress.ip_address(a.host)
    except ValueError:
        return EgressResult("error", f"{a.host!r} is not an IP address (no name is resolved here)")
    if a.kind in ("http", "postgres") and tls is None:
        return EgressResult("error", f"{a.kind} needs the service's TLS context")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    kind = socket.SOCK_DGRAM if a.kind in ("udp", "dns") else socket.SOCK_STREAM
    try:
        sock = await asyncio.to_thread(make_socket, family, kind)
    except OSError as exc:
        return EgressResult("error", f"no socket in the namespace: {_oserror(exc)}")
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            return await _run(sock, a, tls)
    except TimeoutError:
        return EgressResult("timeout", f"nothing came back within {timeout:g} s")
    except ssl.SSLError as exc:  # an alert after the handshake (TLS 1.3 refuses certs late)
        return EgressResult("refused", f"TLS refused: {exc.reason or type(exc).__name__}")
    except OSError as exc:
        return _network(exc)
    except ValueError as exc:  # a malformed answer (`_message`)
        return EgressResult("error", str(exc)[:200])
    finally:
        sock.close()


async def _run(sock: socket.socket, a: EgressAttempt, tls: ssl.SSLContext | None) -> EgressResult:
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (a.host, a.port))
    if a.kind == "tcp":
        return EgressResult("connected", f"TCP connection to {a.describe()[4:]} established")
    if a.kind == "udp":
        await loop.sock_sendall(sock, _udp_payload(a.port))
        data = await loop.sock_recv(sock, MAX_ANSWER)
        return EgressResult("answered", f"{len(data)} bytes came back")
    if a.kind == "dns":
        return await _dns(loop, sock, a.name)
    assert tls is not None  # noqa: S101 — checked by `attempt`
    if a.kind == "http":
        return await _admin_mint(sock, a, tls)
    return await _postgres_login(loop, sock, a, tls)


def _network(exc: OSError) -> EgressResult:
    if exc.errno in NETWORK_ERRNOS:
        return EgressResult("blocked", f"{errno.errorcode[exc.errno]}: {NETWORK_ERRNOS[exc.errno]}")
    return EgressResult("error", _oserror(exc))


def _oserror(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return f"{name}: {exc.strerror or exc}"


def _udp_payload(port: int) -> bytes:
    if port == 123:
        return NTP_CLIENT_REQUEST
    if port == 53:
        return dns.message.make_query("trustproof-egress.invalid.", dns.rdatatype.A).to_wire()
    return b"trustproof egress probe\n"


# -- dns -------------------------------------------------------------------------------------------


async def _dns(loop: asyncio.AbstractEventLoop, sock: socket.socket, name: str) -> EgressResult:
    try:
        query = dns.message.make_query(name, dns.rdatatype.A)
    except (dns.exception.DNSException, ValueError) as exc:
        return EgressResult("error", f"cannot query {name!r}: {exc}")
    await loop.sock_sendall(sock, query.to_wire())
    while True:  # an answer that is not to our query is ignored (spoofing, a late answer)
        data = await loop.sock_recv(sock, 65535)
        try:
            answer = dns.message.from_wire(data)
        except dns.exception.DNSException:
            continue
        if query.is_response(answer):
            return dns_verdict(name, answer)


def dns_verdict(name: str, answer: dns.message.Message) -> EgressResult:
    """What a resolver's answer to an ``A`` query for `name` means for egress."""
    rcode = answer.rcode()
    text = dns.rcode.to_text(rcode)
    if rcode in (dns.rcode.NXDOMAIN, dns.rcode.REFUSED):
        return EgressResult("refused", f"{name}: {text}")
    if rcode == dns.rcode.NOERROR:
        addresses = [
            item.to_text() for rrset in answer.answer for item in rrset if rrset.rdtype == 1
        ]
        shown = ", ".join(addresses) if addresses else "no address"
        return EgressResult("answered", f"{name} resolved: NOERROR ({shown})")
    return EgressResult("error", f"{name}: the resolver answered {text}")


# -- https: the token service's admin API ----------------------------------------------------------


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _tls_streams(
    sock: socket.socket, context: ssl.SSLContext, host: str
) -> Streams | EgressResult:
    """TLS over the connected `sock`; a handshake the peer refuses is ``refused``."""
    try:
        return await asyncio.open_connection(sock=sock, ssl=context, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        return EgressResult("error", f"server certificate not trusted: {exc.verify_message}")
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        return EgressResult("refused", f"TLS handshake refused: {reason}")


async def _admin_mint(sock: socket.socket, a: EgressAttempt, tls: ssl.SSLContext) -> EgressResult:
    streams = await _tls_streams(sock, tls, a.host)
    if isinstance(streams, EgressResult):
        return streams
    reader, writer = streams
    try:
        body = json.dumps({"subject": a.name, "audience": a.name}).encode()
        host = f"[{a.host}]" if ":" in a.host else a.host
        head = (
            f"POST {a.path or '/'} HTTP/1.1\r\nHost: {host}:{a.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode("ascii") + body)
        await writer.drain()
        line = await reader.readline()
        if not line:
            return EgressResult("refused", CLOSED_SILENTLY)
        status = _status(line)
        if status is None:
            return EgressResult("error", "no HTTP status line came back")
        if 200 <= status < 300:
            return EgressResult("connected", f"HTTP {status}: the admin API answered (minted)")
        if status in (401, 403):
            return EgressResult("refused", f"HTTP {status} {await _oauth_error(reader)}".rstrip())
        return EgressResult("error", f"HTTP {status}: neither a refusal nor a success")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def _status(line: bytes) -> int | None:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


async def _oauth_error(reader: asyncio.StreamReader) -> str:
    """The ``error`` member of a refusal's JSON body (never anything else of it)."""
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    try:
        body = json.loads(await reader.readexactly(min(length, MAX_ANSWER)))
    except (ValueError, asyncio.IncompleteReadError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error)[:60] if isinstance(error, str) else ""


# -- postgresql: a login as another role -----------------------------------------------------------


async def _postgres_login(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, a: EgressAttempt, tls: ssl.SSLContext
) -> EgressResult:
    await loop.sock_sendall(sock, SSL_REQUEST)
    reply = await loop.sock_recv(sock, 1)
    if reply == b"N":
        return EgressResult("refused", "the server does not offer TLS (no plaintext login tried)")
    if reply != b"S":
        return EgressResult("error", f"unexpected answer {reply!r} to SSLRequest")
    streams = await _tls_streams(sock, tls, a.host)
    if isinstance(streams, EgressResult):
        return streams
    reader, writer = streams
    try:
        writer.write(startup_message(a.role, a.name or a.role))
        await writer.drain()
        while True:
            try:
                kind, payload = await _message(reader)
            except asyncio.IncompleteReadError:
                return EgressResult("refused", CLOSED_SILENTLY)
            decided = login_verdict(a.role, kind, payload)
            if decided is not None:
                if decided.outcome == "connected":
                    writer.write(b"X\x00\x00\x00\x04")  # Terminate
                return decided
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def startup_message(user: str, database: str) -> bytes:
    fields = b"".join(
        key + b"\x00" + value.encode() + b"\x00"
        for key, value in (
            (b"user", user),
            (b"database", database),
            (b"application_name", "trustproof-egress"),
        )
    )
    body = struct.pack("!i", PROTOCOL_3_0) + fields + b"\x00"
    return struct.pack("!i", len(body) + 4) + body


async def _message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readexactly(5)
    length = struct.unpack("!i", head[1:])[0]
    if not 4 <= length <= 1 << 16:
        raise ValueError(f"a PostgreSQL message of length {length}")
    return head[:1], await reader.readexactly(length - 4)


PASSWORD_METHODS = {3: "cleartext password", 5: "MD5 password", 10: "SASL (SCRAM)"}


def login_verdict(role: str, kind: bytes, payload: bytes) -> EgressResult | None:
    """What one backend message during the login means (None: read the next one)."""
    if kind == b"R" and len(payload) >= 4:
        code = struct.unpack("!i", payload[:4])[0]
        if code == 0:
            return EgressResult("connected", f"logged in as role {role} (AuthenticationOk)")
        method = PASSWORD_METHODS.get(code, f"authentication method {code}")
        return EgressResult("refused", f"the server asked for a {method}; none was given")
    if kind == b"E":
        fields = error_fields(payload)
        code, message = fields.get("C", "?"), fields.get("M", "")
        return EgressResult("refused", f"{code}: {message}"[:200])
    if kind in (b"N", b"v"):  # a notice, NegotiateProtocolVersion: not a decision
        return None
    return EgressResult("error", f"unexpected PostgreSQL message {kind!r} during the login")


def error_fields(payload: bytes) -> dict[str, str]:
    """The fields of an ErrorResponse (``C`` the SQLSTATE, ``M`` the message, …)."""
    found: dict[str, str] = {}
    for part in payload.split(b"\x00"):
        if part:
            found[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return found
