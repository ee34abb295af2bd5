"""The observed surface of the team's services: every listening socket of the processes the sandbox
started for them, and their children, read from ``/proc`` (Linux).

* the processes: the service's process (its pid is also its process group: the backend starts it
  in a new session), every process of that group, and every descendant (by parent pid) — so a
  worker that moved to its own session is still found;
* their sockets: the ``socket:[inode]`` links in ``/proc/<pid>/fd`` (a socket shared by several
  processes, as pre-forked workers share the listening one, counts once: the lowest pid's);
* which of those listen: ``/proc/<pid>/net/{tcp,tcp6,udp,udp6}`` — the tables of *that*
  process's network namespace — TCP in state LISTEN (``0A``), UDP bound and unconnected (``07``
  with no remote address);
* whether a TCP listener speaks TLS: a TLS ClientHello is sent to it on loopback and the first
  bytes of the answer read (a TLS record starts ``16 03`` or ``15 03``). Only where the socket is
  in our own network namespace, or in one we can make sockets in (the isolated backend's service
  namespaces: `connectors`), and bound to loopback or a wildcard address — never to any other
  address (the sandbox's network rule) — else unknown.

Sandbox-owned processes (gateways, token service, PostgreSQL) are not started as service
processes, so they are not in these trees. Parsing is split from reading so it is tested
without ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from trustproof.errors import SandboxError
from trustproof.gateway.upstream import Connector
from trustproof.view import Listener, Transport

PROC = Path("/proc")
TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"
TLS_PROBE_TIMEOUT_S = 2.0
TLS_RECORD_TYPES = (0x15, 0x16)  # alert, handshake


@dataclass(frozen=True)
class Socket:
    """A listening socket found in a network namespace's tables."""

    transport: Transport
    address: str
    port: int


@dataclass(frozen=True)
class Process:
    pid: int
    name: str  # the kernel's comm
    ppid: int
    pgrp: int


def _address(hex_address: str) -> str:
    """``/proc/net`` address text (host byte order per 32-bit word) -> the IP as text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def parse_net_table(text: str, transport: Transport) -> dict[int, Socket]:
    """Listening sockets of one ``/proc/net/{tcp,tcp6,udp,udp6}`` table, by inode."""
    found: dict[int, Socket] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        listening = state == TCP_LISTEN if transport == "tcp" else state == UDP_UNCONNECTED
        host, _, port = local.partition(":")
        remote_port = remote.partition(":")[2]
        if not listening or (transport == "udp" and int(remote_port, 16) != 0):
            continue
        found[int(inode)] = Socket(transport, _address(host), int(port, 16))
    return found


def parse_stat(pid: int, text: str) -> Process:
    """A ``/proc/<pid>/stat`` line -> the process (comm may hold spaces and parentheses)."""
    head, _, tail = text.rpartition(")")
    name = head.partition("(")[2]
    fields = tail.split()
    return Process(pid, name, int(fields[1]), int(fields[2]))


def tree(processes: Iterable[Process], roots: Iterable[int]) -> list[Process]:
    """The processes of `roots`: the roots, members of their process groups, descendants."""
    everyone = {p.pid: p for p in processes}
    chosen = {pid for pid in roots if pid in everyone}
    chosen |= {p.pid for p in everyone.values() if p.pgrp in chosen}
    changed = True
    while changed:
        added = {p.pid for p in everyone.values() if p.ppid in chosen and p.pid not in chosen}
        chosen |= added
        changed = bool(added)
    return sorted((everyone[pid] for pid in chosen), key=lambda p: p.pid)


def _processes(proc: Path) -> list[Process]:
    found = []
    for entry in os.scandir(proc):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):  # ended meanwhile
                found.append(parse_stat(int(entry.name), Path(entry.path, "stat").read_text()))
    return found


def _socket_inodes(proc: Path, pid: int) -> set[int]:
    inodes = set()
    for entry in os.scandir(proc / str(pid) / "fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(entry.path)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def _net_tables(proc: Path, pid: int) -> dict[int, Socket]:
    sockets: dict[int, Socket] = {}
    for table, transport in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
        with contextlib.suppress(FileNotFoundError):  # no IPv6 in that namespace
            text = (proc / str(pid) / "net" / table).read_text()
            sockets.update(parse_net_table(text, transport))  # type: ignore[arg-type]
    return sockets


def _netns(proc: Path, pid: int | str) -> int | None:
    try:
        return os.stat(proc / str(pid) / "ns" / "net").st_ino
    except OSError:
        return None


@dataclass(frozen=True)
class Found:
    """A listening socket of a service process, and whether it is in our network namespace."""

    socket: Socket
    process: Process
    same_netns: bool
    netns: int | None = None  # the inode of its network namespace


def listening(roots: Mapping[str, int], service: str, proc: Path = PROC) -> list[Found]:
    """The listening sockets of `service`'s process tree (`roots`: service -> its pid)."""
    if service not in roots:
        raise SandboxError(
            f"no process of {service!r} is known to the sandbox",
            "is the sandbox running, with this service started by it?",
        )
    own_netns = _netns(proc, "self")
    tables: dict[int | None, dict[int, Socket]] = {}
    found: list[Found] = []
    seen: set[int] = set()  # inodes: a socket shared by workers is one listener
    for process in tree(_processes(proc), [roots[service]]):
        try:
            inodes = _socket_inodes(proc, process.pid)
        except FileNotFoundError:
            continue  # ended meanwhile
        except PermissionError:
            raise SandboxError(
                f"cannot read the open files of {service!r} (pid {process.pid}, "
                f"{process.name}): permission denied",
                "run trustproof as the user that owns the service processes",
            ) from None
        netns = _netns(proc, process.pid)
        if netns not in tables:
            tables[netns] = _net_tables(proc, process.pid)
        for inode in sorted(inodes):
            socket = tables[netns].get(inode)
            if socket is not None and inode not in seen:
                seen.add(inode)
                found.append(Found(socket, process, netns == own_netns, netns))
    return found


def _loopback_for(address: str) -> str | None:
    """Where to reach a socket bound to `address` without leaving the machine, or None."""
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        return address
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return None  # bound to another address: never connected to (network rule)


def client_hello() -> bytes:
    """The bytes of a TLS ClientHello (Python's default client, no certificate checks: no trust
    store is loaded — `ssl.create_default_context` reads the system's, ~0.2 s each time)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=False)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def is_tls_record(first: bytes) -> bool | None:
    """Whether an answer's first bytes start a TLS record (None: no answer at all)."""
    if not first:
        return None
    return len(first) >= 2 and first[0] in TLS_RECORD_TYPES and first[1] == 0x03


async def speaks_tls(address: str, port: int, connector: Connector | None = None) -> bool | None:
    """Send a ClientHello to `address:port` on loopback (of the namespace `connector` makes
    sockets in, if given); whether a TLS record came back."""
    host = _loopback_for(address)
    if host is None:
        return None
    try:
        async with asyncio.timeout(TLS_PROBE_TIMEOUT_S):
            if connector is None:
                reader, writer = await asyncio.open_connection(host, port)
            else:
                reader, writer = await asyncio.open_connection(sock=await connector(host, port))
            try:
                writer.write(client_hello())
                await writer.drain()
                first = await reader.read(5)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return None
    return is_tls_record(first)


async def listeners(
    roots: Mapping[str, int],
    service: str,
    proc: Path = PROC,
    connectors: Mapping[int, Connector] | None = None,
) -> tuple[Listener, ...]:
    """`service`'s listening sockets as `Listener` values, TCP ones tried for TLS (in another
    network namespace through `connectors`: its inode -> how to connect inside it)."""
    found = await asyncio.to_thread(listening, roots, service, proc)
    out = []
    for item in found:
        socket, process = item.socket, item.process
        tls = None
        inside = (connectors or {}).get(item.netns) if item.netns is not None else None
        if socket.transport == "tcp" and (item.same_netns or inside is not None):
            tls = await speaks_tls(socket.address, socket.port, None if item.same_netns else inside)
        out.append(
            Listener(
                service,
                socket.port,
                socket.address,
                socket.transport,
                process.pid,
                process.name,
                tls,
            )
        )
    return tuple(out)
