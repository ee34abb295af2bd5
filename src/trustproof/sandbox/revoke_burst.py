"""A burst of RFC 7009 revocations sent from an event loop of its own, on a thread of its own.

The revocation storm's client is trustproof's, not the sandbox's: run on the sandbox's loop, its
requests (16 in flight) queue in the same loop as the token service that answers them and the
gateways that refuse the revoked tokens, so the client's own work is counted in every gateway's
wait. Here it gets its own loop (uvloop where installed: `trustproof.loop`) and its own
connection pool; it shares nothing with the sandbox but the TLS client context (OpenSSL contexts
may be used from several threads) and the tokens it sends.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import aiohttp

from trustproof.loop import new_loop
from trustproof.sandbox.view_chaos import revoke_all
from trustproof.scrub import Secret

T = TypeVar("T")


class _OwnLoop:
    """An event loop on a thread of its own, for one burst; `close()` joins it."""

    def __init__(self, name: str) -> None:
        self.loop = new_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on this loop; await its result from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


async def _burst(
    url: str, tokens: Sequence[Secret[str]], context: ssl.SSLContext, concurrency: int
) -> tuple[int, ...]:
    connector = aiohttp.TCPConnector(limit=max(1, concurrency))
    async with aiohttp.ClientSession(connector=connector) as session:
        return await revoke_all(session, url, tokens, context, concurrency)


async def revoke_off_loop(
    url: str, tokens: Sequence[Secret[str]], context: ssl.SSLContext, concurrency: int
) -> tuple[int, ...]:
    """RFC 7009 for each token, `concurrency` at a time, from a loop on a thread of its own;
    each status (0: no answer), in the order of `tokens`."""
    own = _OwnLoop("trustproof-revocation-burst")
    try:
        return await own.run(_burst(url, tokens, context, concurrency))
    finally:
        own.close()
