"""The starter service `trustproof init` wrote: replace it with yours, keeping the middleware.

It honours trustproof's contract through `trustproof.middleware.wsgi.TrustproofMiddleware`: it
believes only requests its gateway signed (anything else gets 401 before the app runs), takes
the caller from that proof, and marks its answers with ``X-Served-By`` so the suite can tell
they came from here. With FastAPI, `trustproof.middleware.asgi.TrustproofMiddleware` does the
same (`app.add_middleware(TrustproofMiddleware)`); with Flask, wrap ``app.wsgi_app``.

Standard library only (wsgiref), so `trustproof run` works in a bare virtualenv. trustproof
starts it with its address in ``TRUSTPROOF_HOST``/``TRUSTPROOF_PORT``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from trustproof.middleware.wsgi import TrustproofMiddleware, caller_of

ITEMS: list[dict[str, Any]] = []


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    caller = caller_of(environ)  # who the gateway verified: never read it from the request
    if (method, path) == ("GET", "/"):
        return reply(start_response, 200, {"hello": caller.principal, "roles": caller.roles})
    if (method, path) == ("POST", "/items"):
        ITEMS.append({"by": caller.principal})
        return reply(start_response, 201, {"item": len(ITEMS)})
    if path in ("/", "/items"):
        return reply(start_response, 405, {"error": "method not allowed"})
    return reply(start_response, 404, {"error": "not found"})


def reply(start_response: Callable[..., Any], status: int, body: object) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 201: "Created", 404: "Not Found", 405: "Method Not Allowed"}[status]
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


class RawTargetHandler(WSGIRequestHandler):
    """wsgiref percent-decodes PATH_INFO; the gateway signed the raw request-target: pass it on
    as REQUEST_URI, which the middleware checks the proof against."""

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ["REQUEST_URI"] = self.path
        return environ


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


if __name__ == "__main__":
    host, port = os.environ["TRUSTPROOF_HOST"], int(os.environ["TRUSTPROOF_PORT"])
    with make_server(
        host, port, TrustproofMiddleware(app), server_class=Server, handler_class=RawTargetHandler
    ) as server:
        server.serve_forever()
