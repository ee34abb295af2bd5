"""How long and how much one listener gives its clients (`ConnectionLimits`): the TLS handshake,
request-head and idle keep-alive timeouts, the requests per connection and the connections per
listener. The listeners that apply them: `listener.py` (aiohttp) and `h1server.py` (the
gateway's own HTTP/1.1 server side), both accepting through `accept.AcceptLoop`."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionLimits:
    """How long and how much one listener gives its clients; seconds and counts, all positive.

    The defaults suit a sandbox on one machine (and are documented in the README)."""

    handshake_timeout: float = 10.0
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_requests: int = 1000
    max_connections: int = 512

    def __post_init__(self) -> None:
        for name in ("handshake_timeout", "header_timeout", "idle_timeout"):
            value = getattr(self, name)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not 0 < value < math.inf
            ):
                raise ValueError(
                    f"ConnectionLimits.{name} must be a positive, finite number of seconds"
                )
        for name in ("max_requests", "max_connections"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ConnectionLimits.{name} must be a whole number >= 1")
