"""A plain-HTTP server on loopback with the listener's limits: how the egress and dependency
proxies and the sandbox's dependency mocks each serve their handler (`serve_plain`)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from trustproof.gateway.listener import BoundedServer, ConnectionLimits, GuardedSite

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


async def serve_plain(
    handler: Handler, sock: socket.socket, limits: ConnectionLimits
) -> tuple[web.ServerRunner, str]:
    """Serve `handler` in plain HTTP on the bound, listening `sock`, bounded by `limits`: the
    runner (`cleanup()` stops it) and the URL it answers on. If it cannot start, the socket is
    closed and nothing half-started stays behind."""
    runner: web.ServerRunner | None = None
    try:
        runner = web.ServerRunner(BoundedServer(handler, limits=limits), access_log=None)
        await runner.setup()
        await GuardedSite(runner, sock, ssl_context=None).start()
    except BaseException:
        sock.close()
        if runner is not None:
            await runner.cleanup()
        raise
    host, port = sock.getsockname()[:2]
    return runner, f"http://{host}:{port}"
