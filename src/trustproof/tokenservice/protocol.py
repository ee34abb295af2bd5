"""The token service's answers to requests that never reach it: OAuth JSON, one log line.

aiohttp refuses what its HTTP parser cannot read (a bad request line, an invalid header, a broken
chunk size, an oversized header) before any application code runs, with a ``text/plain`` page,
and logs a traceback that carries the raw request bytes. `OAuthAppRunner` makes those answers the
same RFC 6749 §5.2 JSON as every other refusal (``invalid_request`` with the parser's status) and
logs one line naming only the kind of error; a genuine internal error stays a 500
``server_error`` that grants nothing, its traceback scrubbed.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from trustproof.scrub import scrubbed_traceback
from trustproof.tokenservice.core import oauth_error

log = logging.getLogger("trustproof.tokenservice")


class OAuthErrorHandler(RequestHandler):
    """aiohttp's connection handler, with protocol errors answered as OAuth JSON."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # a response was already started: only closing is left
            raise ConnectionError("a response was already sent; closing the connection")
        kind = type(exc).__name__ if exc is not None else "no response in time"
        if 400 <= status < 500:
            log.warning("token service: malformed HTTP request refused (%s, HTTP %d)", kind, status)
            reply = oauth_error(status, "invalid_request", f"malformed HTTP request ({kind})")
        else:
            detail = scrubbed_traceback(exc) if exc is not None else kind
            log.error("token service error, request refused:\n%s", detail)
            reply = oauth_error(status, "server_error", "internal error; nothing was issued")
        response = web.json_response(
            dict(reply.body), status=reply.status, headers=dict(reply.headers)
        )
        response.force_close()
        return response


class OAuthServer(web.Server):
    def __call__(self) -> RequestHandler:
        return OAuthErrorHandler(self, loop=self._loop, **self._kwargs)


class OAuthAppRunner(web.AppRunner):
    """An `AppRunner` whose connections answer protocol errors with `OAuthErrorHandler`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = OAuthServer  # same state, one overridden factory method
        return server
