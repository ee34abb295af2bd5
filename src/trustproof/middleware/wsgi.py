"""WSGI middleware for services behind a trustproof gateway (Flask, Django, any WSGI app).

    from flask import Flask, request
    from trustproof.middleware.wsgi import TrustproofMiddleware, caller_of

    app = Flask(__name__)
    app.wsgi_app = TrustproofMiddleware(app.wsgi_app)

    @app.get("/orders")
    def orders() -> dict[str, str]:
        return {"for": caller_of(request.environ).principal}

What it does is `trustproof.middleware.contract`: refuse what the gateway did not sign (401
before the app runs), put the verified `Caller` at ``environ["trustproof.caller"]``, and mark
the app's answers with ``X-Served-By``.

The proof signs the request-target exactly as sent; WSGI's ``PATH_INFO`` is percent-decoded, so
the raw target is taken from ``RAW_URI`` (gunicorn, Werkzeug) or ``REQUEST_URI`` (uWSGI,
mod_wsgi). A server that gives neither (the standard library's ``wsgiref``) gets the target
rebuilt from ``SCRIPT_NAME``, ``PATH_INFO`` and ``QUERY_STRING``, which matches the gateway's
canonical paths except for percent-encoded characters: give such a server the raw target (the
starter service of `trustproof init` shows how) or those requests are refused, never let in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from trustproof.middleware.contract import SERVED_BY, Caller, Contract, Refusal

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]
CALLER_KEY = "trustproof.caller"


def caller_of(environ: Environ) -> Caller:
    """The verified caller of the request (KeyError outside the middleware, or for a service
    with ``gateway: none``, where no gateway verified anyone)."""
    caller: Caller = environ[CALLER_KEY]
    return caller


def target_of(environ: Environ) -> str:
    """The request-target as received (see the module's docstring)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    target = quote(path.encode("latin-1"), safe="/;=,:@!$&'()*+~")
    query = environ.get("QUERY_STRING", "")
    return f"{target}?{query}" if query else target


def headers_of(environ: Environ) -> list[tuple[str, str]]:
    """The request's header fields as (name, value) pairs, from the ``HTTP_*`` keys."""
    pairs = [
        (key[5:].replace("_", "-").lower(), str(value))
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            pairs.append((name, str(environ[key])))
    return pairs


class TrustproofMiddleware:
    def __init__(
        self, app: WsgiApp, *, require_proof: bool = True, contract: Contract | None = None
    ) -> None:
        self.app = app
        self.contract = contract or Contract.from_env(require_proof=require_proof)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        checked = self.contract.check(
            str(environ.get("REQUEST_METHOD", "")), target_of(environ), headers_of(environ)
        )
        marker = (SERVED_BY, self.contract.service)
        if isinstance(checked, Refusal):
            body = checked.body()
            start_response(
                f"{checked.status} Unauthorized",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body))), marker],
            )
            return [body]
        if checked is not None:
            environ[CALLER_KEY] = checked

        def marked(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            code = int(status.split(" ", 1)[0]) if status[:3].isdigit() else 0
            if self.contract.marks(code):
                headers = [*headers, marker]
            return start_response(status, headers, *exc_info)

        return self.app(environ, marked)
