"""A minimal HTTP/1.1 keep-alive load client: raw sockets, optional TLS with a client certificate.

An asyncio client spends more time per request than the servers it is meant to measure; this one
writes one fixed request and reads one response framed by ``Content-Length`` (no chunked
encoding, no pipelining), so that one process drives ~10k+ requests/s.

    _load.py latency    URL [--tls DIR] [--token FILE] --count N --seconds S
        one connection, sequential requests; prints every latency in microseconds
    _load.py throughput URL [--tls DIR] [--token FILE] --connections C --seconds S --start T
        C connections, each with one request in flight, from wall time T for S seconds

    _load.py probe      URL [--tls DIR [--no-client-cert]] [--token FILE]
        one request; prints its status and head (`--no-client-cert`: trust the bundle but
        present no certificate, to check that a target really requires one)
`--tls DIR` holds ``cert.pem``, ``key.pem`` and ``bundle.pem`` (as `write_svid_files` writes
them). Prints one JSON object on stdout. Only loopback URLs are accepted, and every loop is
bounded in both count and time.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

PATH = "/orders/7"  # an allowed route for storefront -> orders (GET /orders/{id})
TIMEOUT = 5.0
MAX_THROUGHPUT_REQUESTS = 5_000_000


def client_tls(directory: Path, *, present_svid: bool = True) -> ssl.SSLContext:
    """Trust only the sandbox bundle and present the workload's SVID (no host name check:
    sandbox servers are addressed by loopback IP, as in `trustproof.tls.client_context`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(directory / "bundle.pem")
    if present_svid:
        context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


def build_request(host: str, port: int, token: str | None) -> bytes:
    lines = [f"GET {PATH} HTTP/1.1", f"Host: {host}:{port}", "Accept: */*"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def content_length(head: bytes) -> int:
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        raise ValueError(f"response without Content-Length: {head[:200]!r}")
    end = lower.find(b"\r\n", at + 2)
    return int(lower[at + 17 : end if end >= 0 else len(lower)])


class Connection:
    """One keep-alive connection sending the same request again and again."""

    def __init__(
        self, host: str, port: int, request: bytes, context: ssl.SSLContext | None
    ) -> None:
        self.address = (host, port)
        self.request = request
        self.context = context
        self.reconnects = -1
        self.buffer = b""
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        self.reconnects += 1
        self.buffer = b""
        sock = socket.create_connection(self.address, timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is not None:
            sock = self.context.wrap_socket(sock)  # the handshake happens here, not timed
        return sock

    def close(self) -> None:
        self.sock.close()

    def send(self) -> None:
        self.sock.sendall(self.request)

    def receive(self) -> tuple[int, bytes]:
        """The status and head of the next response; its body is read and dropped."""
        buffer = self.buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = buffer[:end]
                total = end + 4 + content_length(head)
                while len(buffer) < total:
                    buffer += self._recv()
                self.buffer = buffer[total:]
                return int(head[9:12]), head
            buffer += self._recv()

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def exchange(self) -> tuple[int, bytes]:
        """One request and its response; reconnects once if the server closed the connection
        between requests (a keep-alive limit), which is counted in `reconnects`."""
        try:
            self.send()
            return self.receive()
        except (ConnectionError, ssl.SSLEOFError):
            self.sock.close()
            self.sock = self._connect()
            self.send()
            return self.receive()


def open_connection(args: argparse.Namespace) -> Connection:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    if host != "127.0.0.1":
        raise SystemExit(f"refusing to load {host!r}: only 127.0.0.1 is allowed")
    context = None
    if parts.scheme == "https":
        context = client_tls(args.tls, present_svid=not args.no_client_cert)
    token = args.token.read_text().strip() if args.token else None
    return Connection(host, port, build_request(host, port, token), context)


def probe(args: argparse.Namespace) -> dict[str, object]:
    connection = open_connection(args)
    try:
        status, head = connection.exchange()
    finally:
        connection.close()
    return {"first_status": status, "first_head": head.decode("latin-1")}


def latency(args: argparse.Namespace) -> dict[str, object]:
    connection = open_connection(args)
    try:
        first_status, first_head = connection.exchange()
        for _ in range(args.warmup):
            connection.exchange()
        samples: list[float] = []
        errors = 0
        deadline = time.perf_counter() + args.seconds
        while len(samples) < args.count and time.perf_counter() < deadline:
            start = time.perf_counter_ns()
            connection.send()
            status, _ = connection.receive()
            samples.append((time.perf_counter_ns() - start) / 1000)
            errors += status != 200
    finally:
        connection.close()
    return {
        "samples_us": [round(s, 1) for s in samples],
        "errors": errors,
        "first_status": first_status,
        "first_head": first_head.decode("latin-1"),
        "reconnects": connection.reconnects,
    }


def throughput(args: argparse.Namespace) -> dict[str, object]:
    connections = [open_connection(args) for _ in range(args.connections)]
    try:
        for connection in connections:  # warm: TLS session tickets, the server's caches
            connection.exchange()
        time.sleep(max(0.0, args.start - time.time()))
        count = errors = 0
        cpu_start, start = time.process_time(), time.perf_counter()
        deadline = start + args.seconds
        while count < MAX_THROUGHPUT_REQUESTS and time.perf_counter() < deadline:
            for connection in connections:
                connection.send()
            for connection in connections:
                status, _ = connection.receive()
                count += 1
                errors += status != 200
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    finally:
        for connection in connections:
            connection.close()
    return {
        "requests": count,
        "seconds": elapsed,
        "per_second": count / elapsed,
        "errors": errors,
        "cpu_seconds": cpu,
        "reconnects": sum(c.reconnects for c in connections),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["probe", "latency", "throughput"])
    parser.add_argument("url")
    parser.add_argument("--tls", type=Path, help="directory with cert.pem, key.pem, bundle.pem")
    parser.add_argument("--token", type=Path, help="file holding a bearer token")
    parser.add_argument(
        "--no-client-cert", action="store_true", help="trust the bundle but present no SVID"
    )
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--start", type=float, default=0.0, help="wall time to start at")
    args = parser.parse_args()
    result = {"probe": probe, "latency": latency, "throughput": throughput}[args.mode](args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
