"""The ledger service: FastAPI behind uvicorn, terminating mutual TLS and checking its own tokens
(`tokencheck`, PyJWT). Written the way a team writes a FastAPI service; nothing from trustproof.

Who may do what is `PERMISSIONS`, keyed by the caller's name (the last segment of the token's
``sub``, which `tokencheck` has already held to the certificate's SPIFFE ID). A refused caller
gets ``403``; a bad or missing token ``401``; an unknown route ``404``. Answers of a handler carry
the service marker as Starlette sends every header name: in lower case (``x-served-by``).
"""

from __future__ import annotations

import os
import signal
import ssl
from collections.abc import Callable
from typing import Any

import tokencheck
from contexts import Contexts
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

NAME = os.environ["TRUSTPROOF_SERVICE"]

# caller -> routes it may call (route templates as FastAPI declares them)
PERMISSIONS: dict[str, set[str]] = {
    "alice": {"GET /entries", "GET /entries/{entry_id}", "POST /entries"},
    "bob": {"GET /entries/{entry_id}"},
    "carol": {"GET /entries", "GET /admin/export"},
}

# The DER certificate of each open connection, by the client address uvicorn puts in the scope.
PEERS: dict[Any, bytes] = {}
CONTEXTS = Contexts(tokencheck.server_context)  # each new connection's, rebuilt on SIGHUP


class PeerCertProtocol(H11Protocol):
    """uvicorn's h11 protocol that remembers the verified client certificate of the
    connection (asyncio calls `connection_made` once the TLS handshake is done), and closes the
    connection of a certificate that is not of this trust domain (the bundle's CA signs others)."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        peer = tokencheck.spiffe_id_of(der) if der else None
        if (
            der is None
            or peer is None
            or not peer.startswith(f"spiffe://{tokencheck.TRUST_DOMAIN}/")
        ):
            transport.abort()
            return
        PEERS[self.client] = der

    def connection_lost(self, exc: Exception | None) -> None:
        PEERS.pop(self.client, None)
        super().connection_lost(exc)


def ssl_context_factory(config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    return CONTEXTS.listening()


signal.signal(signal.SIGHUP, CONTEXTS.reload)  # new connections get the rotated files

app = FastAPI(redirect_slashes=False, docs_url=None, redoc_url=None, openapi_url=None)


@app.exception_handler(tokencheck.Refused)
async def refused(request: Request, exc: tokencheck.Refused) -> JSONResponse:
    return JSONResponse({"error": exc.reason}, status_code=exc.status)


def caller(request: Request) -> str:
    """The authenticated caller's name: the token checked against the connection's certificate."""
    token = tokencheck.bearer(request.headers.get("authorization"))
    claims = tokencheck.validate(token, PEERS.get(request.scope.get("client")))
    return tokencheck.name_of(claims["sub"])


def permitted(request: Request, who: str = Depends(caller)) -> str:
    route = f"{request.method} {request.scope['route'].path}"
    if route not in PERMISSIONS.get(who, set()):
        raise HTTPException(status_code=403, detail="not permitted")
    return who


def served(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"X-Served-By": NAME})


@app.get("/entries")
def list_entries(who: str = Depends(permitted)) -> JSONResponse:
    return served({"entries": [], "caller": who})


@app.get("/entries/{entry_id}")
def read_entry(entry_id: str, who: str = Depends(permitted)) -> JSONResponse:
    return served({"entry": entry_id, "caller": who})


@app.post("/entries")
def add_entry(who: str = Depends(permitted)) -> JSONResponse:
    return served({"added": True, "caller": who}, 201)


@app.get("/admin/export")
def export(who: str = Depends(permitted)) -> JSONResponse:
    return served({"export": [], "caller": who})
