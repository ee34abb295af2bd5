"""A tiny mTLS server (asyncio + ssl, standard library only) that answers the way some real
servers do, for the verdict tests (`tests/integration/test_verdicts_real_servers.py`).

It terminates mutual TLS with the sandbox's files (``TRUSTPROOF_CERT_FILE``/``_KEY_FILE``/
``_BUNDLE_FILE``: no client certificate or an untrusted one fails the handshake) and then answers
by ``TINY_MODE``:

* ``marker`` — callers named in ``TINY_ALLOW`` (the last segment of their SPIFFE ID) get
  ``404 no such item`` from the handler, marked with a lower-case ``x-served-by`` (as uvicorn and
  Starlette send header names), everyone else ``403``;
* ``unmarked`` — the same, without the marker (a 404 nobody claims: nothing served it);
* ``error`` — ``500 Internal Server Error`` to every request.

One request per connection (``Connection: close``); the request head is bounded in size and time.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys

ENV = os.environ
MODE = ENV.get("TINY_MODE", "marker")
ALLOW = set(filter(None, ENV.get("TINY_ALLOW", "").split(",")))
NAME = ENV["TRUSTPROOF_SERVICE"]
MAX_HEAD = 16384
HEAD_TIMEOUT = 5.0


def context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ENV["TRUSTPROOF_BUNDLE_FILE"])
    ctx.load_cert_chain(ENV["TRUSTPROOF_CERT_FILE"], ENV["TRUSTPROOF_KEY_FILE"])
    return ctx


def caller(writer: asyncio.StreamWriter) -> str:
    cert = writer.get_extra_info("peercert") or {}
    uris = [value for kind, value in cert.get("subjectAltName", ()) if kind == "URI"]
    return uris[0].rsplit("/", 1)[-1] if uris else ""


def answer(status: int, reason: str, body: bytes, extra: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", "content-type: text/plain"]
    lines += [f"{name}: {value}" for name, value in extra]
    lines += [f"content-length: {len(body)}", "connection: close", "", ""]
    return "\r\n".join(lines).encode() + body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
        writer.close()
        return
    if MODE == "error":
        data = answer(500, "Internal Server Error", b"Internal Server Error", [])
    elif caller(writer) in ALLOW:
        marker = [("x-served-by", NAME)] if MODE == "marker" else []
        data = answer(404, "Not Found", b"no such item", marker)
    else:
        data = answer(403, "Forbidden", b"forbidden", [])
    try:
        writer.write(data)
        await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(
        handle, ENV["TRUSTPROOF_HOST"], int(ENV["TRUSTPROOF_PORT"]), ssl=context(), limit=MAX_HEAD
    )
    print(f"{NAME} ({MODE}) listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
