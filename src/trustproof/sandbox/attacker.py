"""The attacker's key server for the ``token.jku`` and ``token.x5u`` probes: plain HTTP on an
ephemeral loopback port, serving an `AttackerKeys`' JWK Set (``/jwks.json``) and self-signed
certificate (``/cert.pem``) and nothing else.

A validator that fetches the ``jku``/``x5u`` a token names, instead of the issuer's keys it was
configured with, fetches these and accepts the attacker's signature. Plain HTTP on purpose: a
validator that fetches key URLs at all is the mistake; one that also refuses ``http://`` is
still fooled by an attacker's HTTPS host on the internet, which a test cannot reach. Started
lazily by the live view (`trustproof.sandbox.view.LiveView.attacker_origin`), stopped with it.
"""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from trustproof.clock import Clock
from trustproof.tokens.forged import AttackerKeys, AttackerOrigin

HOST = "127.0.0.1"


class AttackerServer:
    """Serves one attacker's documents on `HOST`; counts what it served (`fetched`)."""

    def __init__(self, keys: AttackerKeys) -> None:
        self.keys = keys
        self.fetched: list[str] = []  # request paths, in order: evidence that a server fetched
        self._runner: web.AppRunner | None = None
        self._origin: AttackerOrigin | None = None
        self._lock = asyncio.Lock()  # cases run concurrently: start one server, once

    @classmethod
    def for_clock(cls, clock: Clock) -> AttackerServer:
        return cls(AttackerKeys.generate(clock))

    @property
    def origin(self) -> AttackerOrigin:
        if self._origin is None:
            raise RuntimeError("the attacker's key server is not running; start() it first")
        return self._origin

    async def start(self) -> AttackerOrigin:
        async with self._lock:
            if self._origin is None:
                self._origin = await self._start()
            return self._origin

    async def _start(self) -> AttackerOrigin:
        app = web.Application()
        app.router.add_get("/jwks.json", self._jwks)
        app.router.add_get("/cert.pem", self._cert)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        base = f"http://{HOST}:{port}"
        return AttackerOrigin(self.keys, f"{base}/jwks.json", f"{base}/cert.pem")

    async def stop(self) -> None:
        runner, self._runner, self._origin = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def _jwks(self, request: web.Request) -> web.Response:
        self.fetched.append(request.path)
        return web.Response(body=self.keys.jwks_json, content_type="application/json")

    async def _cert(self, request: web.Request) -> web.Response:
        self.fetched.append(request.path)
        return web.Response(body=self.keys.certificate_pem, content_type="application/x-pem-file")
