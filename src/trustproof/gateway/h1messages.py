"""The values of the gateway's HTTP/1.1 server side (`h1server`): a request as received, the
answer to write, where the parser stopped, and the callbacks a connection's manager gives it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from trustproof.errors import TrustproofError

__all__ = [
    "Connection",
    "ExpectHandler",
    "Handler",
    "Malformed",
    "MalformedHandler",
    "Reply",
    "Request",
    "RequestTooLarge",
    "Response",
]


class RequestTooLarge(TrustproofError):
    """A request head or body over one of our limits (llhttp has none), or an expectation other
    than 100-continue: answered as malformed with `status`; `name` says which."""

    def __init__(self, status: int, name: str) -> None:
        what = "unmet expectation" if status == 417 else "over the gateway's limit"
        super().__init__(f"{name}: the request is refused ({what})")
        self.status = status
        self.name = name


class Connection(Protocol):
    """What a request knows of the connection it came on (`h1server.GatewayConnection`): the
    peer's address and the transport (its TLS object: the client certificate)."""

    remote: str
    transport: asyncio.Transport | None


@dataclass(slots=True, eq=False)
class Request:
    """One complete request as received: header names and values decoded as Latin-1 (values
    without surrounding whitespace), the body de-chunked."""

    method: str
    raw_path: str
    raw_headers: list[tuple[str, str]] = field(repr=False)
    version: tuple[int, int]
    body: bytes = field(repr=False)
    keep_alive: bool
    protocol: Connection = field(repr=False)
    expects_continue: bool = False  # an HTTP/1.1 ``Expect: 100-continue``
    then: Handler | None = field(default=None, repr=False)  # decided on its head: what follows

    @property
    def remote(self) -> str:
        return self.protocol.remote

    @property
    def transport(self) -> asyncio.Transport | None:
        return self.protocol.transport


@dataclass(slots=True, eq=False)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    close: bool = False  # end the connection after this response
    dated: bool = False  # `headers` hold a Date field already (the service's)


@dataclass(frozen=True, slots=True)
class Malformed:
    """Where the parser stopped: `status` to answer, `name` the kind of error (never bytes)."""

    status: int
    name: str
    head_complete: bool  # the request line parsed: answer in its HTTP version's syntax


Reply = Callable[[Response], None]
Handler = Callable[[Request, Reply], "Response | None"]
"""Answers a request: returns the `Response` now, or None and calls `reply` with it later, once
(the gateway's forwarded requests: from the upstream connection's callback, no task)."""
MalformedHandler = Callable[[Connection, Malformed], Response]
ExpectHandler = Callable[[Request], "Response | Handler"]
"""Decides on the head of a request that expects 100-continue (its `body` empty): a final
`Response` to refuse it at once, or the `Handler` to call with the request once its body is in."""
