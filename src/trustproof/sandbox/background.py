"""An event loop on a thread of its own, for synchronous callers of the asyncio sandbox (the
`with Sandbox(...)` API and the pytest plugin): everything it runs crosses into that one loop,
so the sandbox is only ever touched from one thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from trustproof.loop import new_loop

T = TypeVar("T")


class BackgroundLoop:
    """`run(coro)` runs `coro` on the loop's thread and waits for its result; `close()` stops
    the loop and joins the thread (idempotent)."""

    def __init__(self, name: str) -> None:
        self._loop = new_loop()  # uvloop where installed (`trustproof.loop`)
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()
