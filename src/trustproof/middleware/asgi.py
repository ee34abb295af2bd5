"""ASGI middleware for services behind a trustproof gateway (FastAPI, Starlette, any ASGI app).

    from fastapi import FastAPI, Request
    from trustproof.middleware.asgi import TrustproofMiddleware, caller_of

    app = FastAPI()
    app.add_middleware(TrustproofMiddleware)       # or: app = TrustproofMiddleware(app)

    @app.get("/orders")
    def orders(request: Request) -> dict[str, str]:
        return {"for": caller_of(request.scope).principal}

What it does is `trustproof.middleware.contract`: refuse what the gateway did not sign (401
before the app runs), put the verified `Caller` at ``scope["state"]["trustproof.caller"]``
(``request.state`` in Starlette does not see it: use `caller_of(request.scope)`), and mark the
app's answers with ``X-Served-By``. Lifespan and websocket scopes pass through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from trustproof.middleware.contract import SERVED_BY, Caller, Contract, Refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
CALLER_KEY = "trustproof.caller"


def caller_of(scope: Scope) -> Caller:
    """The verified caller of the request in `scope` (KeyError outside the middleware, or for a
    service with ``gateway: none``, where no gateway verified anyone)."""
    caller: Caller = scope["state"][CALLER_KEY]
    return caller


def target_of(scope: Scope) -> str:
    """The request-target as received: the raw path (as the server read it) and the query."""
    raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8")
    query = scope.get("query_string") or b""
    target = raw.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


class TrustproofMiddleware:
    def __init__(self, app: App, *, require_proof: bool = True, contract: Contract | None = None):
        self.app = app
        self.contract = contract or Contract.from_env(require_proof=require_proof)
        self._marker = (SERVED_BY.lower().encode(), self.contract.service.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope.get("headers", [])
        ]
        checked = self.contract.check(scope.get("method", ""), target_of(scope), headers)
        if isinstance(checked, Refusal):
            await self._refuse(checked, send)
            return
        if checked is not None:
            scope.setdefault("state", {})[CALLER_KEY] = checked

        async def marked(message: Message) -> None:
            if message.get("type") == "http.response.start" and self.contract.marks(
                int(message.get("status", 0))
            ):
                message["headers"] = [*message.get("headers", []), self._marker]
            await send(message)

        await self.app(scope, receive, marked)

    async def _refuse(self, refusal: Refusal, send: Send) -> None:
        body = refusal.body()
        await send(
            {
                "type": "http.response.start",
                "status": refusal.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    self._marker,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
