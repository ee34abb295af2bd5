"""A mock of an external dependency served inside the sandbox from the spec's response table
(`spec.dependencies.Mock.responses`): plain HTTP on loopback, in the controller's event loop.

Each request is decided by `trustproof.spec.mock_table.decide` — the credentials header first
(missing or wrong: 401, the table is not consulted), then the first matching row, else a 404
saying so — and recorded (`records`: method, path, whether the credentials were right, status;
never a header value). The only caller holding the credentials is the egress proxy for the
dependency, so a service reaching the mock any other way is refused.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Sequence

from aiohttp import web

from trustproof.gateway.listener import ConnectionLimits
from trustproof.gateway.plain import serve_plain
from trustproof.scrub import Secret
from trustproof.spec.dependencies import MockResponse
from trustproof.spec.mock_table import MockRecord, decide

MAX_RECORDS = 10_000  # the newest are kept


class MockServer:
    def __init__(
        self,
        name: str,
        responses: Sequence[MockResponse],
        header: str,
        expected: Secret[str],
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.name = name
        self.responses = tuple(responses)
        self.header = header
        self._expected = expected
        self.limits = limits or ConnectionLimits()
        self._records: deque[MockRecord] = deque(maxlen=MAX_RECORDS)
        self._runner: web.ServerRunner | None = None
        self.url = ""

    def __repr__(self) -> str:
        return f"MockServer(name={self.name!r}, url={self.url!r}, rows={len(self.responses)})"

    @property
    def records(self) -> tuple[MockRecord, ...]:
        """Every request seen (the newest `MAX_RECORDS`), oldest first."""
        return tuple(self._records)

    async def start(self, sock: socket.socket) -> None:
        self._runner, self.url = await serve_plain(self._handle, sock, self.limits)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        await request.read()  # bounded by the server's body limit
        decision = decide(
            self.name,
            self.responses,
            self.header,
            request.method,
            request.raw_path,
            presented=request.headers.getall(self.header, []),
            expected=self._expected,
        )
        self._records.append(decision.record)
        return web.Response(
            status=decision.status, body=decision.body, headers=list(decision.headers)
        )
