"""Waiting for things to be ready, and refusing to start on ports that are taken."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

from trustproof.errors import SandboxError
from trustproof.gateway.upstream import Connector
from trustproof.sandbox.backend import Handle
from trustproof.spec.model import HealthCheck
from trustproof.tls import client_context

POLL_SECONDS = 0.02


def ensure_free(host: str, port: int, owner: str) -> None:
    """Raise a clear error when `host:port` cannot be bound (someone else listens there)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SandboxError(
                f"{owner}: port {port} on {host} is already in use",
                f"stop whatever listens there (`ss -ltnp 'sport = :{port}'`), or choose another "
                "port in the spec",
            ) from None
        raise SandboxError(f"{owner}: cannot use {host}:{port}: {exc.strerror}") from None
    finally:
        probe.close()


def last_lines(path: Path, count: int = 15) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(f"    | {line}" for line in lines[-count:]) or "    | (the log is empty)"


async def _open(
    host: str, port: int, context: ssl.SSLContext | None, connector: Connector | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if connector is None:
        return await asyncio.open_connection(host, port, ssl=context)
    sock = await connector(host, port)  # e.g. inside the service's network namespace
    hostname = host if context is not None else None
    return await asyncio.open_connection(sock=sock, ssl=context, server_hostname=hostname)


async def _http_ok(
    host: str,
    port: int,
    path: str,
    context: ssl.SSLContext | None = None,
    connector: Connector | None = None,
) -> bool:
    try:
        reader, writer = await asyncio.wait_for(_open(host, port, context, connector), 1.0)
    except (OSError, TimeoutError, ssl.SSLError):
        return False
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 1.0)
        parts = status_line.split()
        return len(parts) >= 2 and parts[1].startswith(b"2")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def https_ok(url: str, bundle_pem: bytes) -> bool:
    """Whether ``GET url`` over TLS, verified against `bundle_pem`, answers 2xx within a second
    (the token service's health: its certificate must be valid now, too)."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        return False
    return await _http_ok(parts.hostname, parts.port, parts.path, client_context(bundle_pem))


async def _tcp_ok(host: str, port: int, connector: Connector | None = None) -> bool:
    try:
        _, writer = await asyncio.wait_for(_open(host, port, None, connector), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def healthy(
    host: str, port: int, check: HealthCheck, connector: Connector | None = None
) -> bool:
    """One health check, as the spec describes it (`connector`: how to connect, when not from
    this process's own network namespace)."""
    if check.kind == "http":
        return await _http_ok(host, port, check.path, connector=connector)
    return await _tcp_ok(host, port, connector)


async def wait_ready(
    name: str,
    host: str,
    port: int,
    check: HealthCheck,
    handle: Handle,
    *,
    connector: Connector | None = None,
) -> float:
    """Poll the service until its health check passes; returns the seconds it took.

    Raises `SandboxError` with the service's last log lines when it exits or times out.
    """
    start = time.monotonic()
    deadline = start + check.timeout.seconds
    while True:
        if not handle.running():
            raise SandboxError(
                f"service {name!r} exited before it was ready (exit code {handle.exit_code})",
                f"its last log lines ({handle.log_file}):\n{await handle.last_lines()}",
            )
        if await healthy(host, port, check, connector):
            return time.monotonic() - start
        if time.monotonic() > deadline:
            what = f"GET {check.path}" if check.kind == "http" else "a TCP connection"
            raise SandboxError(
                f"service {name!r} did not become ready within {check.timeout} "
                f"({what} on {host}:{port})",
                f"its last log lines ({handle.log_file}):\n{await handle.last_lines()}",
            )
        await asyncio.sleep(POLL_SECONDS)
